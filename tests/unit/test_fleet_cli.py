"""Issue 13 from a shell: `ota release create/list/delete` and `ota rollout
start/list/show/pause/resume/cancel` (the server runs rollouts; the CLI writes them), and
every package of webapp/ in the wheel."""
import hashlib
import io
import json
import re
from pathlib import Path

from tests.unit.test_pages import beat

ROOT = Path(__file__).resolve().parents[2]


def ota(app, *args):
    return app.test_cli_runner().invoke(args=["ota"] + list(args))


def test_a_release_is_made_from_a_folder_listed_and_deleted(app, tmp_path):
    folder = tmp_path / "lamp-v2"
    (folder / "lib").mkdir(parents=True)
    (folder / "main.py").write_bytes(b"import lib.util\n")
    (folder / "lib" / "util.py").write_bytes(b"X = 1\n")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_bytes(b"ref\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    beat(app, "lamp1", files={"main.py": hashlib.sha1(b"import lib.util\n").hexdigest(),
                              "lib/util.py": hashlib.sha1(b"X = 1\n").hexdigest()})

    r = ota(app, "release", "create", "lamp-2", str(folder), "--delete-extra")
    assert r.exit_code == 0, r.output
    assert r.output == "release lamp-2: lib/util.py, main.py (deletes what it does not hold)\n"
    r = ota(app, "release", "list")
    assert re.search(r"lamp-2\s+2 files\s+1 device runs it\s+\(deletes extra files\)", r.output)
    again = ota(app, "release", "create", "lamp-2", str(folder))
    assert again.exit_code == 2 and "releases never change" in again.output

    r = ota(app, "release", "delete", "lamp-2")
    assert r.exit_code == 0 and "deleted release lamp-2" in r.output
    assert "no releases yet" in ota(app, "release", "list").output
    r = ota(app, "release", "delete", "lamp-2")
    assert r.exit_code == 2 and "no release named lamp-2" in r.output


def test_a_release_refuses_a_folder_it_cannot_place(app, tmp_path):
    deep = tmp_path / "deep" / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "x.py").write_bytes(b"1\n")
    r = ota(app, "release", "create", "deep", str(tmp_path / "deep"))
    assert r.exit_code == 2 and "one sub-folder at most" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = ota(app, "release", "create", "empty", str(empty))
    assert r.exit_code == 2 and "at least one file" in r.output
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "boot.py").write_bytes(b"pass\n")
    r = ota(app, "release", "create", "boot", str(boot))
    assert r.exit_code == 2 and "safe-boot code" in r.output
    assert "no releases yet" in ota(app, "release", "list").output


def test_a_rollout_is_started_shown_steered_and_refused_from_the_cli(app, tmp_path):
    folder = tmp_path / "v2"
    folder.mkdir()
    (folder / "app.py").write_bytes(b"LEVEL = 2\n")
    ota(app, "release", "create", "v2", str(folder))
    for name in ("a1", "a2", "a3"):
        beat(app, name)
    ota(app, "tag", "a2", "hall")
    ota(app, "tag", "a3", "hall")

    r = ota(app, "rollout", "start", "v2", "-d", "a1", "--tag", "hall", "--wave-size", "2")
    assert r.exit_code == 0, r.output
    assert r.output == ("rollout 1 of v2: 3 devices (0 run it already); after the canary: "
                        "ota rollout resume 1\n")
    shown = json.loads(ota(app, "rollout", "show", "1", "--json").output)
    assert [(d["device"], d["wave"]) for d in shown["devices"]] == [("a1", 0), ("a2", 1),
                                                                   ("a3", 1)]
    assert shown["settings"]["threshold"] == 0.2 and shown["settings"]["concurrency"] == 4
    table = ota(app, "rollout", "show", "1").output
    assert "rollout 1 of v2: running" in table and re.search(r"canary\s+a1\s+pending", table)

    assert ota(app, "rollout", "pause", "1").output == (
        "rollout 1 paused: pushes going finish, no new ones start\n")
    r = ota(app, "rollout", "pause", "1")
    assert r.exit_code == 2 and "rollout 1 is not running" in r.output
    assert ota(app, "rollout", "resume", "1").output == "rollout 1 goes on\n"
    assert ota(app, "rollout", "cancel", "1").output == "rollout 1 cancelled\n"
    assert re.search(r"1\s+v2\s+cancelled\s+3/3 finished, 0 failed",
                     ota(app, "rollout", "list").output)
    for args, message in ((["start", "v9", "-d", "a1"], "no release named v9"),
                          (["start", "v2", "--tag", "nobody"], "no device matches"),
                          (["start", "v2"], "no devices picked"),
                          (["show", "7"], "no rollout 7"),
                          (["resume", "7"], "no rollout 7")):
        r = ota(app, "rollout", *args)
        assert r.exit_code == 2 and message in r.output, (args, r.output)
    r = ota(app, "rollout", "start", "v2", "-d", "a1", "--threshold", "120")
    assert r.exit_code == 2 and "120" in r.output


def test_every_package_of_webapp_goes_into_the_wheel():
    listed = re.search(r"^packages = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(),
                       re.S | re.M).group(1)
    packages = set(re.findall(r'"([^"]+)"', listed))
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in ROOT.glob("webapp/**/__init__.py")}
    assert found - packages == set()


def test_a_refused_release_stores_nothing_and_a_syntax_error_is_refused(app, tmp_path, client):
    for files, message in (({"boot.py": b"pass\n", "unique.py": b"U = 1\n"}, "safe-boot code"),
                           ({"BOOT.PY": b"pass\n"}, "safe-boot code"),
                           ({"SETTINGS.JSON": b"{}"}, "settings"),
                           ({"bad.py": b"def (\n", "ok.py": b"K = 1\n"}, "bad.py, line 1")):
        folder = tmp_path / ("f%d" % len(list(tmp_path.iterdir())))
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        r = ota(app, "release", "create", "r1", str(folder))
        assert r.exit_code == 2 and message in r.output, (files, r.output)
        upload = {"name": "r1", "file": [(io.BytesIO(d), "f/" + n) for n, d in files.items()]}
        r = client.post("/api/releases", data=upload, content_type="multipart/form-data")
        assert r.status_code == 400 and message in r.json["message"], (files, r.json)
    assert client.get("/api/files").json["files"] == []  # nothing was stored
    for name in ("-x", ".hidden", "a/b", "<b>"):
        r = client.post("/api/releases", json={"name": name, "files": {"a.py": "nothing"}})
        assert r.status_code == 400 and "release name is" in r.json["message"], name


def test_huge_rollout_ids_and_names_are_refused_without_a_traceback(app):
    for args in (["show", "99999999999999999999"], ["pause", "0"], ["cancel", "-1"]):
        r = ota(app, "rollout", *args)
        assert r.exit_code == 2 and "Traceback" not in r.output and r.exception is None or \
            isinstance(r.exception, SystemExit), (args, r.output)
        assert "is not in the range" in r.output or "No such option" in r.output, r.output


def test_tags_are_one_in_any_case_and_untag_says_what_is_not_there(app):
    beat(app, "lamp1")
    assert ota(app, "tag", "lamp1", "Kitchen", "kitchen").output == "lamp1: kitchen\n"
    r = ota(app, "untag", "lamp1", "garden")
    assert r.exit_code == 2 and "lamp1 has no tag garden: it has kitchen" in r.output
    assert ota(app, "untag", "lamp1", "KITCHEN").output == "lamp1: no tags\n"


def test_the_server_leaves_out_hidden_files_and_pycache_and_checks_mpy_files(app, client):
    upload = {"name": "web-2", "file": [(io.BytesIO(b"M = 1\n"), "a.py")] * 1}
    upload["file"] = [(io.BytesIO(b"M = 1\n"), "x"), (io.BytesIO(b"\0"), "y"),
                      (io.BytesIO(b"\0"), "z")]
    upload["path"] = ["lamp/main.py", "lamp/.DS_Store", "lamp/__pycache__/main.pyc"]
    r = client.post("/api/releases", data=upload, content_type="multipart/form-data")
    assert r.status_code == 201 and [f["target"] for f in r.json["files"]] == ["main.py"]
    for files, message in (({"main.mpy": b"M\x06\x00\x1f"}, "runs main.py as source only"),
                           ({"util.mpy": b"B=9\n"}, "util.mpy is not a .mpy file")):
        r = client.post("/api/releases", data={
            "name": "m", "file": [(io.BytesIO(d), n) for n, d in files.items()]},
            content_type="multipart/form-data")
        assert r.status_code == 400 and message in r.json["message"], r.json
    r = client.post("/api/releases", json={"name": "WEB-2", "files": {"a.py": "main.py"}})
    assert r.status_code == 400 and "there is a release named web-2 already" in r.json["message"]


def test_a_rollout_where_too_many_failed_with_nothing_left_to_stop_ends_failed(app, tmp_path):
    from tests.unit.test_rollouts import FakePushes, end_pushes
    from webapp import extension
    from webapp.db import get_db
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "app.py").write_bytes(b"A = 1\n")
    ota(app, "release", "create", "v", str(folder))
    for name in ("b1", "b2"):
        beat(app, name)
    ext = extension.of(app)
    ext.rollouts.pushes = FakePushes()
    ota(app, "rollout", "start", "v", "-d", "b1", "-d", "b2", "--canary", "0",
        "--concurrency", "2")
    with app.app_context():
        ext.rollouts.advance(get_db(), 1)
        end_pushes(app, ext.rollouts.describe(get_db(), 1), fail={"b1", "b2"})
        ext.rollouts.advance(get_db(), 1)  # both failed at once: nothing left to stop
        shown = ext.rollouts.describe(get_db(), 1)
    assert (shown["state"], shown["reason"]) == ("failed", "2 failed")
