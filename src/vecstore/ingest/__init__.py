"""vecstore.ingest"""
