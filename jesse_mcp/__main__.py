"""`python -m jesse_mcp` and the `jesse-mcp` command."""

import os
import sys


def main() -> None:
    early = os.environ.get("JESSE_MCP_EARLY_ZYGOTE", "1") != "0"  # trading-mcp sets 0 for a call that needs no Jesse
    if early and not {"-h", "--help"} & set(sys.argv[1:]):
        from jesse_mcp.backtesting.pools import start_zygote_early
        from shared.config.store import trading_home

        start_zygote_early(trading_home() / "jesse")  # the same workdir as build_server's pool
    from jesse_mcp.server import main as serve

    serve()


if __name__ == "__main__":
    main()
