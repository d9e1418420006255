"""vecstore.chaos"""
