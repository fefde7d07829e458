"""The HTTP service: Streamable HTTP transport with agent tokens, the agents CLI, and the stdio bridge."""
