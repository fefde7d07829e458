"""What ``binance-mcp connect`` checks before it starts: the URL and the token file. Each problem stops it with
exit 2 and one line on stderr saying what to change; stdout stays empty and the file's contents are never shown."""

from __future__ import annotations

import subprocess

import pytest

from tests.service.bridge_helpers import bridge_env, connect_command, new_token, write_token

GOOD_URL = "http://127.0.0.1:8765/mcp"


def setup_case(tmp_path, name: str):
    token = new_token()
    files = {"missing": None, "empty": "\n", "two tokens": f"{token}\n{new_token()}\n", "not a token": "abc123\n",
             "binance key": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A\n"}
    if name == "directory":
        return str(tmp_path), GOOD_URL
    path = tmp_path / "token"
    if name in files and files[name] is not None:
        path.write_text(files[name])
        path.chmod(0o600)
    elif name not in files:
        write_token(path, token)
    urls = {"ftp": "ftp://127.0.0.1/mcp", "remote http": "http://192.0.2.10:8765/mcp",
            "no /mcp": "http://127.0.0.1:8765/", "password": "http://me:pw@127.0.0.1:8765/mcp",
            "bad port": "http://127.0.0.1:99999/mcp"}
    return str(path), urls.get(name, GOOD_URL)


@pytest.mark.parametrize(("case", "words"), [
    ("missing", ["the token file", "cannot be read (No such file or directory)", "--token-file"]),
    ("directory", ["is a directory"]),
    ("empty", ["is empty", "binance-mcp agents add NAME"]),
    ("two tokens", ["holds 2 words, not one token", "a file of its own"]),
    ("not a token", ["does not hold a binance-mcp agent token", "bmcp_"]),
    ("binance key", ["does not hold a binance-mcp agent token", "not a Binance API key"]),
    ("ftp", ["is not an http:// or https:// URL", GOOD_URL]),
    ("remote http", ["plain http to another machine (192.0.2.10)", "Use https://", "127.0.0.1"]),
    ("no /mcp", ["does not end in /mcp"]),
    ("password", ["user name or password", "token in --token-file"]),
    ("bad port", ["port that is not a number"]),
])
def test_a_bad_setup_stops_the_bridge_with_exit_2(tmp_path, case: str, words: list[str]):
    token_file, url = setup_case(tmp_path, case)
    contents = (tmp_path / "token").read_text() if (tmp_path / "token").is_file() else ""
    done = subprocess.run(connect_command(url, token_file), env=bridge_env(), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert done.stderr.startswith("binance-mcp connect: ") and done.stderr.count("\n") == 1, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    for secret in contents.split():
        assert secret not in done.stderr, "the token file's contents are in the message"
