"""Hyperparameter optimization on Optuna: the search space from the strategy's declared hyperparameters, trials
run as backtests on the worker pool in ask/tell batches, judged out of sample, stored in Optuna's own SQLite
storage under $TRADING_MCP_HOME/optimization. Plain Python: the MCP tools live in jesse_mcp/tools/optimization.py.
"""
