"""Traffic: concurrent clients that write versioned points and read them back, recording history."""
