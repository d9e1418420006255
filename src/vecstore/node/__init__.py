"""vecstore.node"""
