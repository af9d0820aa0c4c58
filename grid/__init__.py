"""The grid model shared by substations/ and balancer/: Redis keys, Lua scripts, allocation,
wire format and validation. Neither service imports the other; both import this."""
