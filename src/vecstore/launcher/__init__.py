"""vecstore.launcher"""
