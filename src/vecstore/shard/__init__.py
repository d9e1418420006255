"""vecstore.shard"""

x: int = 1
