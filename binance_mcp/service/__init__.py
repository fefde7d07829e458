"""The guard in its own trust domain: the HTTP service, its agents and tokens, and the stdio bridge to it."""
