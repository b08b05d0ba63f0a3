"""The environment spec and its key: what selects an environment, and what must not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import values
from runner.api import RunOptions, load_script, prepare
from runner.cache import Cache
from runner.interpreters import Interpreter
from runner.spec import (
    KEY_FORMAT,
    EnvSpec,
    IndexSettings,
    canonical_json,
    make_spec,
    normalize_requirements,
    redact_text,
    redact_url,
)

PY = Interpreter(
    path="/usr/bin/python3",
    real_path="/usr/bin/python3.11",
    implementation="cpython",
    version="3.11.9",
    sys_version="3.11.9 (main) [GCC 13]",
    platform="linux-x86_64",
    soabi="cpython-311-x86_64-linux-gnu",
    markers=(("python_version", "3.11"), ("sys_platform", "linux")),
)


def key(deps: list[str], **kwargs: object) -> str:
    return make_spec(deps, kwargs.pop("interpreter", PY), **kwargs).key  # type: ignore[arg-type]


# (id, one way of writing the dependencies, another way meaning the same)
SAME = [
    ("order", ["rich", "requests<3"], ["requests<3", "rich"]),
    ("case", ["Requests", "RICH"], ["requests", "rich"]),
    ("separators", ["foo_bar.baz"], ["Foo-Bar-Baz"]),
    ("spacing", ["requests >= 2 , < 3"], ["requests<3,>=2"]),
    ("specifier-order", ["requests>=2,<3"], ["requests<3,>=2"]),
    ("duplicates", ["rich", "rich", "Rich"], ["rich"]),
    ("duplicate-specifier", ["requests>=2,<3", "Requests<3"], ["requests>=2,<3"]),
    ("duplicate-specifier-other-order", ["Requests<3", "requests >= 2 , <3"], ["requests>=2,<3"]),
    ("split-specifiers-merged", ["requests>=2", "requests<3"], ["requests>=2,<3"]),
    ("extras-merged", ["rich[jupyter]", "Rich>=13"], ["rich[jupyter]>=13"]),
    ("extras-case-and-order", ["x[B,a]", "x[c]"], ["X[a,b,c]"]),
    ("extras-duplicated", ["x[a]", "x[a]"], ["x[a]"]),
    ("marker-spacing-and-quotes", ["a; python_version<'3.12'"], ['a ; python_version < "3.12"']),
    (
        "url-spacing",
        ["b@ https://example.invalid/b-1.0-py3-none-any.whl"],
        ["B @ https://example.invalid/b-1.0-py3-none-any.whl"],
    ),
    ("empty", [], []),
]


@pytest.mark.parametrize(("one", "other"), [c[1:] for c in SAME], ids=[c[0] for c in SAME])
def test_same_needs_same_key(one: list[str], other: list[str]) -> None:
    assert normalize_requirements(one) == normalize_requirements(other)
    assert key(one) == key(other)


# (id, dependencies, different dependencies)
DIFFERENT = [
    ("other-package", ["rich"], ["requests"]),
    ("extra-package", ["rich"], ["rich", "requests"]),
    ("specifier", ["rich>=13"], ["rich>=14"]),
    ("extra", ["rich"], ["rich[jupyter]"]),
    ("marker", ["rich"], ["rich; python_version < '3.12'"]),
    ("other-marker", ["rich; os_name == 'nt'"], ["rich; os_name == 'posix'"]),
    ("url", ["b @ https://example.invalid/b-1.whl"], ["b @ https://example.invalid/b-2.whl"]),
    ("none-vs-empty-specifier-of-other", ["a"], ["a", "b"]),
    # Names are not joined without separators (pipx's "".join): "ab" + "c" != "a" + "bc".
    ("no-ambiguous-join", ["ab", "c"], ["a", "bc"]),
]


@pytest.mark.parametrize(
    ("one", "other"), [c[1:] for c in DIFFERENT], ids=[c[0] for c in DIFFERENT]
)
def test_different_needs_different_key(one: list[str], other: list[str]) -> None:
    assert key(one) != key(other)


def test_normalized_form() -> None:
    assert normalize_requirements(
        ["Rich>=13", "rich[Jupyter]", "requests<3", "a; python_version<'3.12'", "a"]
    ) == ("a", 'a ; python_version < "3.12"', "requests<3", "rich[jupyter]>=13")


def test_markers_kept_separately_from_unconditional() -> None:
    out = normalize_requirements(["x; sys_platform == 'win32'", "x>=1"])
    assert out == ('x ; sys_platform == "win32"', "x>=1")


req_strategy = st.builds(
    lambda name, spec, extra: f"{name}{extra}{spec}",
    st.sampled_from(["a", "B", "c_d", "C-D", "e.f"]),
    st.sampled_from(["", ">=1", "<2", "==1.5", ">=1,<2", " >= 1 "]),
    st.sampled_from(["", "[x]", "[X,y]"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(req_strategy, max_size=6), st.randoms(use_true_random=False))
def test_key_independent_of_order_and_duplication(reqs: list[str], rnd: object) -> None:
    shuffled = list(reqs) + list(reqs[:2])  # duplicates too
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert normalize_requirements(shuffled) == normalize_requirements(reqs)


# ------------------------------------------------------------------ other key inputs


def test_key_changes_with_interpreter_identity() -> None:
    base = key(["rich"])
    for field, value in [
        ("version", "3.11.10"),
        ("implementation", "pypy"),
        ("sys_version", "3.11.9 (other build)"),
        ("platform", "linux-aarch64"),
        ("soabi", "cpython-311d-x86_64-linux-gnu"),
        ("real_path", "/opt/python3.11/bin/python3.11"),
    ]:
        other = values.replace(PY, **{field: value})  # type: ignore[arg-type]
        assert key(["rich"], interpreter=other) != base, field


def test_key_ignores_the_path_used_to_reach_the_interpreter() -> None:
    # Two symlinks to one interpreter (same real path and identity) share environments.
    assert key(["rich"], interpreter=values.replace(PY, path="/usr/local/bin/python3")) == key(
        ["rich"]
    )


@pytest.mark.parametrize(
    "index",
    [
        IndexSettings(index_url="https://mirror.invalid/simple"),
        IndexSettings(extra_index_urls=("https://extra.invalid/simple",)),
        IndexSettings(find_links=("/wheels",)),
        IndexSettings(no_index=True),
    ],
    ids=["index-url", "extra-index-url", "find-links", "no-index"],
)
def test_key_changes_with_index_settings(index: IndexSettings) -> None:
    assert key(["rich"], index=index) != key(["rich"])


def test_key_changes_with_lock_digest_and_cutoff() -> None:
    base = key(["rich"])
    assert key(["rich"], lock_digest="a" * 64) != base
    assert key(["rich"], lock_digest="a" * 64) != key(["rich"], lock_digest="b" * 64)
    assert key(["rich"], exclude_newer="2025-01-01T00:00:00Z") != base


def test_key_is_versioned_canonical_json() -> None:
    spec = make_spec(["Rich", "a"], PY)
    data = spec.key_data()
    assert data["format"] == KEY_FORMAT
    assert data["requirements"] == ["a", "rich"]
    text = canonical_json(data)
    assert json.loads(text) == data
    assert text == canonical_json(json.loads(text))  # sorted keys, fixed separators
    assert len(spec.key) == 32 and all(c in "0123456789abcdef" for c in spec.key)
    assert EnvSpec(requirements=("a", "rich"), interpreter=PY).key == spec.key


# ------------------------------------------------------------------ ambient configuration


def _prepared_key(script: Path, options: RunOptions | None = None) -> tuple[str, str | None]:
    prepared = prepare(load_script(str(script)), options or RunOptions(), Cache())
    return prepared.spec.key, prepared.digest


def test_key_ignores_ambient_pip_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "s.py"
    script.write_text('# /// script\n# dependencies = ["alpha"]\n# ///\n')
    base = _prepared_key(script)
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text("[global]\nindex-url = https://mirror.invalid/simple\n")
    for name, value in [
        ("PIP_INDEX_URL", "https://mirror.invalid/simple"),
        ("PIP_EXTRA_INDEX_URL", "https://extra.invalid/simple"),
        ("PIP_FIND_LINKS", str(tmp_path)),
        ("PIP_NO_INDEX", "1"),
        ("PIP_CONFIG_FILE", str(pip_conf)),
        ("PIP_CERT", "/etc/ssl/private-ca.pem"),
        ("UV_INDEX_URL", "https://mirror.invalid/simple"),
        ("RUNNER_INSTALLER", "uv"),
    ]:
        monkeypatch.setenv(name, value)
        assert _prepared_key(script) == base, name


def test_explicit_index_option_changes_key_and_digest(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text('# /// script\n# dependencies = ["alpha"]\n# ///\n')
    base = _prepared_key(script)
    changed = _prepared_key(script, RunOptions(index_url="https://mirror.invalid/simple"))
    assert changed[0] != base[0] and changed[1] != base[1]


def test_same_needs_written_differently_share_key_across_scripts(tmp_path: Path) -> None:
    one = tmp_path / "one.py"
    other = tmp_path / "other.py"
    one.write_text('# /// script\n# dependencies = ["Alpha>=1", "beta"]\n# ///\nprint(1)\n')
    other.write_text(
        '# /// script\n# dependencies = [\n#   "beta",\n#   "alpha >= 1",\n# ]\n# ///\n'
    )
    assert _prepared_key(one)[0] == _prepared_key(other)[0]


# ------------------------------------------------------------------ credentials

REDACT = [
    (
        "user-and-password",
        "https://user:s3cret@host.invalid/simple",
        "https://***@host.invalid/simple",
    ),
    ("token-as-user", "https://ghp_tok3n@host.invalid/simple/", "https://***@host.invalid/simple/"),
    ("password-only", "https://:s3cret@host.invalid/", "https://***@host.invalid/"),
    ("port-kept", "http://u:p@127.0.0.1:8080/simple", "http://***@127.0.0.1:8080/simple"),
    ("query-kept", "https://u:p@h.invalid/s?x=1", "https://***@h.invalid/s?x=1"),
    ("no-credentials", "https://host.invalid/simple", "https://host.invalid/simple"),
    ("local-path-with-at", "/home/me/wheels@2024", "/home/me/wheels@2024"),
    # URLs that do not parse are redacted all the same.
    ("bad-port", "https://user:s3cret@host:abc/", "https://***@host:abc/"),
    ("broken-ipv6", "https://u:s3cret@[::1/simple", "https://***@[::1/simple"),
    ("at-in-password", "https://u:s3c@ret@host:x/", "https://***@host:x/"),
    ("ipv6-kept", "https://u:s3cret@[::1]:8080/s", "https://***@[::1]:8080/s"),
    ("vcs-scheme", "git+https://u:s3cret@host/r.git", "git+https://***@host/r.git"),
]


@pytest.mark.parametrize(("url", "shown"), [c[1:] for c in REDACT], ids=[c[0] for c in REDACT])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "text",
    [
        "pkg @ https://user:s3cret@host:abc/pkg.whl",
        "Collecting x from https://u:s3cret@[::1/x.whl (line 3)",
        "proxy user:s3cret@proxy.invalid:3128 refused",
        "'https://user:s3cret@host:99999999/'",
    ],
)
def test_redact_text_hides_anything_like_user_password_at(text: str) -> None:
    shown = redact_text(text)
    assert "s3cret" not in shown and "***@" in shown
    assert "s3cret" not in redact_text(text, mask="")


def test_direct_url_credentials_are_stored_masked_but_keep_keys_apart() -> None:
    one = make_spec(["pkg @ https://user:s3cret@h.invalid/pkg.whl"], PY)
    two = make_spec(["pkg @ https://user:other@h.invalid/pkg.whl"], PY)
    assert one.key != two.key
    assert one.shown_requirements() == ("pkg @ https://***@h.invalid/pkg.whl",)
    assert "s3cret" not in canonical_json(one.stored_key_data()).decode()


def test_credentials_never_in_key_data() -> None:
    index = IndexSettings(
        index_url="https://user:s3cret@private.invalid/simple",
        extra_index_urls=("https://tok3n@extra.invalid/simple",),
        find_links=("https://u:hunter2@links.invalid/",),
    )
    text = canonical_json(make_spec(["rich"], PY, index=index).key_data()).decode()
    for secret in ("s3cret", "tok3n", "hunter2", "user"):
        assert secret not in text
    assert "private.invalid" in text and "extra.invalid" in text and "links.invalid" in text
