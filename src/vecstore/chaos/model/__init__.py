"""The model: what a correct cluster may hold and return, derived from the client history."""
