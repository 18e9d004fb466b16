"""The bot turn: ports to the MCP engine and Security Hub, rules, the message processor."""
