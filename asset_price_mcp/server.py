"""asset_price_mcp: prices from several public providers, behind the shared policy guard."""

from __future__ import annotations

from shared.server_common import add_policy_resource, register_common_tools, run_server
from shared.tooling import GuardedServer, ServerDeps, ToolRegistry

INSTRUCTIONS = (
    "Prices of crypto assets, stocks, ETFs, FX and metals from several public providers. Every call is checked "
    "against the trading policy and journaled; get_policy shows the policy in force."
)


def build_server(deps: ServerDeps) -> GuardedServer:
    tools = ToolRegistry(deps)
    register_common_tools(tools)
    server = tools.build(instructions=INSTRUCTIONS)
    add_policy_resource(server)
    return server


def main(argv: list[str] | None = None) -> None:
    run_server("asset-price-mcp", "asset_price_mcp_port", build_server, argv)
