"""The mind: the agent loop, its functions, memory, the context window, the model client."""
