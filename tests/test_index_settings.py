"""Index settings in [tool.runner] and flags, upload-date cutoffs, --with, credentials."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from runner.errors import MetadataError
from runner.interpreters import probe
from runner.metadata import parse
from runner.settings import ScriptSettings, effective_index, parse_cutoff, script_settings
from runner.spec import IndexSettings, make_spec
from tests.conftest import run_runner, write_script
from tests.wheels import make_wheel, serve_index

pytestmark = pytest.mark.timeout(180)


def script_with(path: Path, deps: list[str], runner: list[str], body: str) -> Path:
    """A script whose block has dependencies and a [tool.runner] table."""
    lines = ["# /// script", "# dependencies = [" + ", ".join(f'"{d}"' for d in deps) + "]"]
    lines += ["# [tool.runner]", *(f"# {line}" for line in runner), "# ///"]
    path.write_text("\n".join(lines) + "\n" + body)
    return path


def block(*lines: str) -> str:
    body = "\n".join(f"# {line}" if line else "#" for line in lines)
    return f"import sys\n# /// script\n{body}\n# ///\n"


@pytest.mark.parametrize(
    ("setting", "line", "fragment"),
    [
        ("index-url = 3", 6, "index-url must be a str"),
        ('extra-index-urls = "https://x"', 6, "extra-index-urls must be a list of strings"),
        ("find-links = [1]", 6, "find-links must be a list of strings"),
        ('no-index = "yes"', 6, "no-index must be true or false"),
        ('exclude-newer = "last tuesday"', 6, "exclude-newer: 'last tuesday' is neither"),
        ('index-url = ""', 6, "index-url must be a str"),
        ('exclude-newer = "0001-01-01T00:00:00+14:00"', 6, "is out of range"),
    ],
)
def test_invalid_settings_name_file_and_line(setting: str, line: int, fragment: str) -> None:
    text = block("dependencies = []", "", "[tool.runner]", setting)
    meta = parse(text, "tool.py")
    with pytest.raises(MetadataError) as info:
        script_settings(meta, "tool.py")
    assert info.value.message.startswith(f"tool.py:{line}: ")
    assert fragment in info.value.message
    assert info.value.hint


def test_valid_settings_are_read() -> None:
    text = block(
        "[tool.runner]",
        'index-url = "https://mirror.example/simple"',
        'extra-index-urls = ["https://extra.example/simple"]',
        'find-links = ["wheels", "https://files.example/links"]',
        "no-index = false",
        'exclude-newer = "2026-01-01T00:00:00Z"',
        'other-tool-key = "ignored here"',
    )
    settings = script_settings(parse(text, "t.py"), "t.py")
    assert settings == ScriptSettings(
        index_url="https://mirror.example/simple",
        extra_index_urls=("https://extra.example/simple",),
        find_links=("wheels", "https://files.example/links"),
        no_index=False,
        exclude_newer="2026-01-01T00:00:00Z",
    )


def test_flags_override_and_extend_block_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = ScriptSettings(
        index_url="https://block/simple",
        extra_index_urls=("https://a/simple",),
        find_links=("wheels",),
    )
    merged = effective_index(
        settings,
        script_dir="/scripts",
        index_url="https://flag/simple",
        extra_index_urls=["https://b/simple", "https://a/simple"],
        find_links=["local"],
        no_index=True,
    )
    assert merged == IndexSettings(
        index_url="https://flag/simple",
        extra_index_urls=("https://a/simple", "https://b/simple"),
        find_links=("/scripts/wheels", str(tmp_path / "local")),
        no_index=True,
    )
    assert effective_index(settings, script_dir="/s").index_url == "https://block/simple"


def test_cutoff_durations_are_rounded_to_the_utc_day() -> None:
    now = dt.datetime(2026, 3, 15, 17, 42, 5, tzinfo=dt.UTC)
    later = now + dt.timedelta(hours=5)  # same UTC day: same value, same key
    assert parse_cutoff("14 days", now) == "2026-03-01T00:00:00Z"
    assert parse_cutoff("14 days", later) == parse_cutoff("14 days", now)
    assert parse_cutoff("2 weeks", now) == "2026-03-01T00:00:00Z"
    assert parse_cutoff("P1D", now) == "2026-03-14T00:00:00Z"
    assert parse_cutoff("2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z"
    assert parse_cutoff("2026-01-01T02:00:00+02:00") == "2026-01-01T00:00:00Z"
    assert parse_cutoff("2026-01-01") == "2026-01-01T00:00:00Z"
    with pytest.raises(ValueError):
        parse_cutoff("soon")


def test_index_settings_and_cutoff_are_part_of_the_key() -> None:
    interp = probe(sys.executable)
    base = make_spec(["alpha"], interp)
    keys = {
        base.key,
        make_spec(["alpha"], interp, index=IndexSettings(index_url="https://a/simple")).key,
        make_spec(["alpha"], interp, index=IndexSettings(no_index=True)).key,
        make_spec(["alpha"], interp, index=IndexSettings(find_links=("/w",))).key,
        make_spec(["alpha"], interp, exclude_newer="2026-01-01T00:00:00Z").key,
        make_spec(["alpha"], interp, lock_digest="0" * 64).key,
    }
    assert len(keys) == 6


def test_block_index_url_and_relative_find_links(tmp_path: Path, wheelhouse: Path) -> None:
    index_dir = tmp_path / "index"
    make_wheel(index_dir, "alpha", "1.0")
    project = tmp_path / "project"
    shutil.copytree(wheelhouse, project / "wheels")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with serve_index(index_dir) as (url, requests):
        script = project / "job.py"
        script.write_text(
            "# /// script\n"
            '# dependencies = ["alpha", "gamma"]\n'
            "# [tool.runner]\n"
            f'# index-url = "{url}"\n'
            '# find-links = ["wheels"]\n'
            "# ///\n"
            "import alpha, gamma\nprint(alpha.VERSION)\n"
        )
        # PIP_INDEX_URL points at a dead port: only the block's settings can work.
        result = run_runner("run", "project/job.py", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "1.0\n"
        assert any("/simple/alpha" in r for r in requests)
        again = run_runner("run", str(script), cwd=elsewhere, env={"RUNNER_NO_FASTPATH": "1"})
        assert again.returncode == 0, again.stderr
        assert "building" not in again.stderr  # same settings from any cwd: same env


def test_exclude_newer_hides_a_newer_upload(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    make_wheel(index_dir, "alpha", "1.0")
    make_wheel(index_dir, "alpha", "2.0")
    times = {
        "alpha-1.0-py3-none-any.whl": "2025-06-01T00:00:00Z",
        "alpha-2.0-py3-none-any.whl": "2026-02-01T00:00:00Z",
    }
    body = "import alpha\nprint(alpha.VERSION)\n"
    with serve_index(index_dir, upload_times=times) as (url, _):
        script = script_with(
            tmp_path / "job.py",
            ["alpha"],
            [f'index-url = "{url}"', 'exclude-newer = "2026-01-01T00:00:00Z"'],
            body,
        )
        old = run_runner("run", str(script))
        assert old.returncode == 0, old.stderr
        assert old.stdout == "1.0\n"
        # The flag overrides the block's cutoff; a different cutoff is a different env.
        new = run_runner("run", "--exclude-newer", "2026-03-01T00:00:00Z", str(script))
        assert new.returncode == 0, new.stderr
        assert new.stdout == "2.0\n"
        bad = run_runner("run", "--exclude-newer", "someday", str(script))
        assert bad.returncode == 2 and "someday" in bad.stderr


def test_credentials_never_leak(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    make_wheel(index_dir, "alpha", "1.0")
    make_wheel(index_dir, "beta", "1.0", requires=["alpha"])
    outputs = []
    with serve_index(index_dir) as (url, _):
        secret_url = url.replace("http://", "http://user:secret@")
        script = script_with(
            tmp_path / "job.py",
            ["beta"],
            [f'extra-index-urls = ["{secret_url}"]'],
            "import alpha\nprint(alpha.VERSION)\n",
        )
        flags = ["--index-url", secret_url.replace("user:", "flaguser:")]
        for args in (
            ["lock", *flags, str(script)],
            ["run", "-v", *flags, str(script)],
            ["run", *flags, "--refresh", str(script)],
            ["lock", "--check", str(script)],
        ):
            result = run_runner(*args)
            assert result.returncode == 0, result.stderr
            outputs += [result.stdout, result.stderr]
        # A failing install prints the installer's messages: still redacted.
        script_with(script, ["no-such-package"], [f'index-url = "{secret_url}"'], "")
        failed = run_runner("run", "-v", str(script))
        assert failed.returncode in (104, 105)
        outputs += [failed.stdout, failed.stderr]
    assert not any("secret" in text for text in outputs)
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.is_symlink()]
    files.append(tmp_path / "pylock.job.toml")
    assert any(p.name.endswith(".log") for p in files)
    for path in files:
        assert b"secret" not in path.read_bytes(), path


def test_direct_url_credentials_never_leak_but_still_select_the_environment(
    tmp_path: Path,
) -> None:
    index_dir = tmp_path / "index"
    make_wheel(index_dir, "alpha", "1.0")
    outputs = []
    with serve_index(index_dir) as (url, _):
        base = url.removesuffix("/simple").replace("http://", "http://user:{}@")
        wheel = "/files/alpha-1.0-py3-none-any.whl"
        script = script_with(
            tmp_path / "job.py",
            ["alpha @ " + base.format("s3cr3t-one") + wheel],
            [],
            "import alpha\nprint(alpha.VERSION)\n",
        )
        for args in (
            ["run", "-v", str(script)],
            ["run", str(script)],
            ["cache", "list", "--json"],
            ["cache", "list"],
            ["sync", "--json", str(script)],
            ["lock", str(script)],  # last: a lock of a bare URL has no hashes to install
        ):
            result = run_runner(*args)
            assert result.returncode == 0, result.stderr
            outputs += [result.stdout, result.stderr]
        assert outputs[0] == "1.0\n"
        listed = json.loads(outputs[4])["environments"]
        assert [e["requirements"] for e in listed] == [
            ["alpha @ " + base.format("").replace("user:@", "***@") + wheel]
        ]
        # Other credentials for the same URL: a different environment (the key still sees
        # them, although nothing stored shows them).
        script_with(script, ["alpha @ " + base.format("s3cr3t-two") + wheel], [], "import alpha\n")
        lock_text = (tmp_path / "pylock.job.toml").read_text()
        assert "s3cr3t" not in lock_text and "requirements = [" in lock_text
        (tmp_path / "pylock.job.toml").unlink()
        again = run_runner("run", str(script))
        assert again.returncode == 0, again.stderr
        outputs += [again.stdout, again.stderr]
        listed = json.loads(run_runner("cache", "list", "--json").stdout)["environments"]
        assert len({e["key"] for e in listed}) == 2
    assert not any("s3cr3t" in text for text in outputs), outputs
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.is_symlink()]
    files.append(tmp_path / "pylock.job.toml")
    assert any(p.name == "runner-env.json" for p in files)
    assert any(p.name.endswith(".log") for p in files)
    for path in files:
        if path.exists():
            assert b"s3cr3t" not in path.read_bytes(), path


def test_with_adds_requirements_and_works_in_a_shebang(
    tmp_path: Path, offline_wheels: Path
) -> None:
    script = write_script(tmp_path / "job.py", "import alpha\nprint(alpha.VERSION)\n", [])
    without = run_runner("run", str(script))
    assert without.returncode == 1 and "ModuleNotFoundError" in without.stderr
    result = run_runner("run", "--with", "alpha", str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1.0\n"

    bin_dir = Path(sys.executable).parent
    tool = tmp_path / "tool"
    tool.write_text(
        "#!/usr/bin/env -S runner run --with beta --with gamma\n"
        "import beta, gamma\nprint('shebang ok')\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for _ in range(2):  # cold, then warm
        ran = subprocess.run([str(tool)], capture_output=True, text=True, env=env, timeout=120)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == "shebang ok\n"
    assert ran.stderr == ""  # the second run was warm: nothing built, nothing said


def test_a_relative_cutoff_expires_at_the_next_utc_midnight() -> None:
    from runner.settings import cutoff_expires

    now = dt.datetime(2026, 3, 15, 18, 30, tzinfo=dt.UTC)
    midnight = int(dt.datetime(2026, 3, 16, tzinfo=dt.UTC).timestamp())
    assert cutoff_expires("14 days", now) == midnight
    assert cutoff_expires("P1D", now) == midnight
    assert cutoff_expires("2026-01-01T00:00:00Z", now) is None
    assert cutoff_expires(None, now) is None


def test_warm_alias_of_a_relative_cutoff_is_not_trusted_after_it_moves(
    tmp_path: Path, cache_dir: Path
) -> None:
    """Tomorrow the cold path would pick another key: the alias must expire with the day."""
    from tests import warmpath

    script = tmp_path / "s.py"
    script.write_text(
        "# /// script\n# dependencies = []\n# [tool.runner]\n"
        '# exclude-newer = "3 days"\n# ///\nprint("ok")\n'
    )
    first = run_runner("run", str(script))
    assert first.returncode == 0, first.stderr
    (alias,) = (cache_dir / "scripts").iterdir()
    expires = [line for line in alias.read_text().splitlines() if line.startswith("expires\t")]
    assert len(expires) == 1
    assert warmpath.read_alias(str(cache_dir), alias.name) is not None
    # Move the expiry into the past: the warm path must now miss.
    alias.write_text(alias.read_text().replace(expires[0], "expires\t1000"))
    assert warmpath.read_alias(str(cache_dir), alias.name) is None
