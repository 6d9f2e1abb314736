"""Streaming: the wire codec (and, with the daemon, sources, sinks, reservoir and the daemon loop)."""
