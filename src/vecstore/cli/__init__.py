"""vecstore.cli"""
