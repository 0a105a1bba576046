"""`trading-mcp ask TEXT`: the parser's plan when it understands the text, else the GLM fallback.

Kept apart from `run` (the plan runner) and `glm` (which runs its choice through `run`), so neither imports the other
back.
"""

from __future__ import annotations

import sys

from trading_cli.ask.parse import AskError, NotUnderstood, parse
from trading_cli.ask.run import run_plan


async def cmd_ask(text: str, as_json: bool, yes: bool = False) -> int:
    try:
        plan = parse(text)
    except NotUnderstood as e:
        from trading_cli.ask.glm import glm_fallback  # GLM only with ZHIPUAI_API_KEY set; else the suggestions

        return await glm_fallback(text, e, as_json, yes)
    except AskError as e:
        print(f"trading-mcp: {e}", file=sys.stderr)
        return 2
    return await run_plan(plan, as_json)
