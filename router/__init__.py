"""vecstore.router"""
