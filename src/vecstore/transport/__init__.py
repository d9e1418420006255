"""vecstore.transport"""
