"""The agent as an MCP server: tools generated from the registry, served over stdio by
``computer-agent mcp`` (proxying to an agent URL) and by the daemon itself at ``/mcp``."""
