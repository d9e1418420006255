"""Validators: compare what the cluster holds and returned with what the model allows."""
