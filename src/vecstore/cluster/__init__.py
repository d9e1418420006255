"""vecstore.cluster"""
