"""Which files import tools may read: imports/ and configured folders only; never system trees, hidden or .env files;
and no error ever quotes a file's content."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.server import build_server
from shared.config.changes import apply_changes, loosenings
from shared.config.file import validate_config_data
from shared.config.models import TradingConfig
from shared.errors import ConfigError
from shared.policy.readable import FileAccessError, ReadableFolders
from tests.mcp_helpers import accept, payload, text_of

T0 = 1_747_699_200_000
SECRET = "API_SECRET=sk-live-do-not-leak-42"
CANDLES = "timestamp,open,high,low,close,volume\n" + "".join(
    f"{T0 + i * 60_000},100,101,99,100.5,1\n" for i in range(5)
)


@pytest.fixture
def imports(home: Path) -> Path:
    folder = home / "imports"
    folder.mkdir()
    return folder


def _refusal(folders: ReadableFolders, requested: str) -> str:
    with pytest.raises(FileAccessError) as caught:
        folders.resolve(requested)
    return str(caught.value)


def test_a_file_outside_the_allowed_folders_is_refused_and_the_message_says_how_to_add_a_folder(home, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.csv"
    outside.write_text(SECRET + "\n")
    message = _refusal(ReadableFolders(home), str(outside))
    assert "is outside the folders tools may read" in message and str(home / "imports") in message
    assert "import_config.folders" in message and "update_config" in message and "confirm" in message
    assert SECRET not in message


def test_a_dot_dot_escape_out_of_imports_is_refused(home, imports):
    (home / "secret.csv").write_text(SECRET + "\n")
    message = _refusal(ReadableFolders(home), "../secret.csv")
    assert "outside the folders tools may read" in message and "'..'" in message and SECRET not in message


def test_a_link_inside_imports_to_etc_passwd_is_refused(home, imports):
    (imports / "passwd.csv").symlink_to("/etc/passwd")
    message = _refusal(ReadableFolders(home), "passwd.csv")
    assert "files under /etc" in message and "never read" in message
    assert "root:" not in message


def test_proc_self_environ_is_refused_even_when_its_tree_is_configured_by_a_link(home, tmp_path_factory):
    os.environ["TRADING_MCP_TEST_MARKER"] = "marker-value-should-not-appear"
    try:
        message = _refusal(ReadableFolders(home), "/proc/self/environ")
    finally:
        del os.environ["TRADING_MCP_TEST_MARKER"]
    assert "files under /proc" in message and "marker-value" not in message
    linked = tmp_path_factory.mktemp("data")
    (linked / "proc").symlink_to("/proc")
    message = _refusal(ReadableFolders(home, (str(linked),)), str(linked / "proc" / "self" / "environ"))
    assert "files under /proc" in message


@pytest.mark.parametrize("name", [".env", "prod.env", ".hidden.csv", ".ssh/id_rsa.csv"])
def test_hidden_files_dot_folders_and_env_files_are_refused_inside_imports(home, imports, name):
    target = imports / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(SECRET + "\n")
    message = _refusal(ReadableFolders(home), str(target))
    assert "hidden files and folders" in message and ".env files are never read" in message
    assert SECRET not in message


def test_a_link_with_a_plain_name_to_an_env_file_inside_imports_is_refused(home, imports):
    (imports / ".env").write_text(SECRET + "\n")
    (imports / "candles.csv").symlink_to(imports / ".env")
    assert SECRET not in _refusal(ReadableFolders(home), "candles.csv")


def test_a_path_with_a_nul_byte_or_a_link_loop_is_refused_as_unusable(home, imports):
    (imports / "loop.csv").symlink_to(imports / "loop.csv")
    assert "not a usable path" in _refusal(ReadableFolders(home), "bad\x00name.csv")
    assert "not a usable path" in _refusal(ReadableFolders(home), "loop.csv")


def test_the_imports_folder_is_created_on_first_use(home):
    assert not (home / "imports").exists()
    assert ReadableFolders(home).resolve("btc.csv") == (home / "imports" / "btc.csv").resolve()
    assert (home / "imports").is_dir()


@pytest.mark.parametrize(
    ("folder", "says"),
    [
        ("relative/dir", "not an absolute path"),
        ("/", "every file"),
        ("/etc/ssl", "system tree /etc"),
        ("/proc", "/proc"),
    ],
)
def test_an_unsafe_import_folder_is_refused_by_the_configuration(folder, says):
    with pytest.raises(ConfigError, match=says):
        validate_config_data({"import_config": {"folders": [folder]}})


def test_an_import_folder_is_stored_absolute_with_home_expanded():
    cfg = validate_config_data({"import_config": {"folders": ["~/candles"]}})
    assert cfg.import_config.folders == [os.path.expanduser("~/candles")]


def test_adding_an_import_folder_needs_the_person_and_removing_one_does_not():
    base = validate_config_data({"import_config": {"folders": ["/data/a"]}})
    added = validate_config_data(apply_changes(base.model_dump(), {"import_config.folders": ["/data/a", "/data/b"]}))
    removed = validate_config_data(apply_changes(base.model_dump(), {"import_config.folders": []}))
    assert loosenings(base, added) == ["import_config.folders adds /data/b"]
    assert loosenings(base, removed) == [] and loosenings(TradingConfig(), TradingConfig()) == []


@pytest.mark.anyio
async def test_the_tool_refuses_an_env_file_without_quoting_it_and_stores_nothing(deps, imports):
    (imports / "prod.env").write_text(SECRET + "\n")
    async with connect(build_server(deps, warmup=())) as client:
        result = await client.call_tool("import_candles_csv", {"path": "prod.env", "symbol": "BTC-USDT"})
        listing = payload(await client.call_tool("list_candles", {}))
    assert result.isError and ".env files are never read" in text_of(result) and SECRET not in text_of(result)
    assert listing["count"] == 0


@pytest.mark.anyio
async def test_the_tool_never_quotes_a_first_line_that_is_not_a_candle_header(deps, imports):
    (imports / "notes.csv").write_text(SECRET + ",password=hunter2\n1,2\n")
    async with connect(build_server(deps, warmup=())) as client:
        result = await client.call_tool("import_candles_csv", {"path": "notes.csv", "symbol": "BTC-USDT"})
        listing = payload(await client.call_tool("list_candles", {}))
    text = text_of(result)
    assert result.isError and "not a candle CSV header" in text and "timestamp (or time/date), open" in text
    assert "sk-live" not in text and "hunter2" not in text and listing["count"] == 0


@pytest.mark.anyio
async def test_a_header_missing_a_column_shows_only_the_recognised_names(deps, imports):
    (imports / "partial.csv").write_text(f"timestamp,open,high,low,close,{SECRET}\n{T0},1,1,1,1,1\n")
    async with connect(build_server(deps, warmup=())) as client:
        result = await client.call_tool("import_candles_csv", {"path": "partial.csv", "symbol": "BTC-USDT"})
    text = text_of(result)
    assert "names timestamp, open, high, low, close but lacks column(s) ['volume']" in text
    assert "sk-live" not in text


@pytest.mark.anyio
async def test_a_csv_in_imports_is_imported_by_its_relative_path(deps, imports):
    (imports / "btc.csv").write_text(CANDLES)
    async with connect(build_server(deps, warmup=())) as client:
        report = payload(await client.call_tool("import_candles_csv", {"path": "btc.csv", "symbol": "BTC-USDT"}))
    assert report["imported_rows"] == 5 and report["market"]["sources"] == ["csv:btc.csv"]


@pytest.mark.anyio
async def test_a_csv_in_a_folder_the_person_added_is_imported(deps, tmp_path_factory):
    folder = tmp_path_factory.mktemp("candles")
    (folder / "eth.csv").write_text(CANDLES)
    callback = accept(True)
    async with connect(build_server(deps, warmup=()), elicitation_callback=callback) as client:
        before = await client.call_tool("import_candles_csv", {"path": str(folder / "eth.csv"), "symbol": "ETH-USDT"})
        changed = payload(
            await client.call_tool("update_config", {"changes": {"import_config.folders": [str(folder)]}})
        )
        report = payload(
            await client.call_tool("import_candles_csv", {"path": str(folder / "eth.csv"), "symbol": "ETH-USDT"})
        )
    assert before.isError and "outside the folders tools may read" in text_of(before)
    assert f"import_config.folders adds {folder}" in callback.calls[0]
    assert changed["confirmation"] == "confirmed by the person through elicitation"
    assert report["imported_rows"] == 5 and report["symbol"] == "ETH-USDT"


def test_a_pipe_inside_imports_is_refused_without_waiting_for_a_writer(home, imports):
    from jesse_mcp.candles.csv_import import read_csv_candles

    os.mkfifo(imports / "pipe.csv")
    real = ReadableFolders(home).resolve("pipe.csv")
    with pytest.raises(FileAccessError, match="not a regular file"):
        read_csv_candles(real)
