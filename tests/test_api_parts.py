"""The api engine's parts that need no model server: settings, rate limits, the response cache, the
image as training saw it, the summary's arithmetic, amlc.serve's command line, and the dataset stage's
teacher rules. The engine against a real server is tests/test_api.py."""

from __future__ import annotations

import asyncio
import io
import socket
import time

import pandas as pd
import pytest
from PIL import Image

from amlc import swift_data
from amlc.config import load_config
from amlc.engines import api
from amlc.errors import InputError


def cfg_with(*overrides):
    return load_config(None, ["inference.preds_dir=/tmp/unused-preds", *overrides])


@pytest.mark.parametrize("override,message", [
    ("api.base_url=localhost:8000", "must be an http"),
    ("api.max_in_flight=0", "api.max_in_flight must be a positive integer"),
    ("api.timeout=0", "api.timeout must be > 0"),
    ("api.retries=-1", "api.retries must be >= 0"),
    ("api.headers.Authorization=Bearer sk-123", "would save a secret in the config"),
    ("api.headers.X-Api-Key=sk-123", "would save a secret in the config"),
    ("api.api_key_env=sk-proj-123", r"must be the NAME of an environment variable .*, not the key itself$"),
])
def test_settings_are_checked(override, message):
    with pytest.raises(InputError, match=message):
        api.Settings.from_config(cfg_with(override))


def test_settings_defaults_follow_training_and_the_preds_dir():
    s = api.Settings.from_config(cfg_with("train.max_pixels=50176"))
    assert s.max_pixels == 50176 and s.cache_dir == "/tmp/unused-preds/api-cache"
    assert api.Settings.from_config(cfg_with("api.max_pixels=1000000")).max_pixels == 1000000


def test_a_missing_key_or_server_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("AMLC_NO_SUCH_KEY", raising=False)
    with pytest.raises(InputError, match=r"environment variable AMLC_NO_SUCH_KEY \(named by api.api_key_env\)"):
        api.ApiEngine(cfg_with("api.api_key_env=AMLC_NO_SUCH_KEY"))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InputError, match=f"cannot reach the API at http://127.0.0.1:{port}/v1"):
        api.ApiEngine(cfg_with(f"api.base_url=http://127.0.0.1:{port}/v1"))


def test_waits_for_a_server_that_is_still_starting():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Models(BaseHTTPRequestHandler):
        def do_GET(self):
            data = b'{"object": "list", "data": [{"id": "late"}]}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    servers = []

    def start():
        servers.append(ThreadingHTTPServer(("127.0.0.1", port), Models))
        servers[0].serve_forever()

    threading.Timer(1.5, start).start()  # the model is loading: nothing listens for 1.5 s
    t0 = time.monotonic()
    engine = api.ApiEngine(cfg_with(f"api.base_url=http://127.0.0.1:{port}/v1", "api.wait_for_server=60"))
    try:
        assert engine.model == "late" and 1.5 <= time.monotonic() - t0 < 30  # the only model served
    finally:
        engine.close()
        servers[0].shutdown()
        servers[0].server_close()


def test_bucket_limits_the_rate():
    async def go(bucket, n, each):
        t0 = time.monotonic()
        for _ in range(n):
            await bucket.take(each)
        return time.monotonic() - t0

    assert asyncio.run(go(api.Bucket(20.0, 20.0), 30, 1)) >= 0.45  # 20 at once, then 10 at 20/s
    assert asyncio.run(go(api.Bucket(0.0, 0.0), 1000, 1)) < 0.5  # rate 0: no limit
    tokens = api.Bucket(1000.0, 500.0)  # 1000 tokens/s, 500 banked
    assert asyncio.run(go(tokens, 3, 500)) >= 0.95  # 500 now, then 500 more twice
    tokens.spend(1000)  # the replies used more than estimated: the next take waits for it
    assert asyncio.run(go(tokens, 1, 100)) >= 1.0


def test_cache_round_trip_and_key(tmp_path):
    cache = api.ResponseCache(tmp_path)
    cache.put("ab" + "0" * 62, {"text": "12 V"})
    assert cache.get("ab" + "0" * 62) == {"text": "12 V"} and cache.get("cd" + "0" * 62) is None
    assert api.ResponseCache(None).get("ab" + "0" * 62) is None

    class Fake:  # cache_key reads only these
        model, logprobs = "m", True
        s = api.Settings.from_config(cfg_with())

    key = api.ApiEngine.cache_key
    base = key(Fake, "voltage", "sha")
    assert base == key(Fake, "voltage", "sha")
    assert len({base, key(Fake, "width", "sha"), key(Fake, "voltage", "sha2")}) == 3
    other = type("Other", (Fake,), {"model": "m2"})
    assert key(other, "voltage", "sha") != base


@pytest.mark.parametrize("size,mode", [((1200, 900), "RGB"), ((300, 200), "RGBA"), ((60, 40), "L"), ((97, 1501), "P")])
def test_image_is_resized_as_training_resized_it(size, mode):
    from swift.template.vision_utils import load_image  # what ms-swift's training reads images with

    from PIL import ImageDraw

    im = Image.linear_gradient("L").resize(size).convert(mode)  # a product photo's smooth areas...
    ImageDraw.Draw(im).text((size[0] // 4, size[1] // 2), "Net Wt 500 g", fill=0)  # ...and some print
    if mode == "RGBA":  # transparent areas: ms-swift drops alpha, qwen_vl_utils alone would paint white
        im.putalpha(Image.linear_gradient("L").rotate(90).resize(size))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    max_pixels = 313600
    url, w, h = api.image_payload(buf.getvalue(), max_pixels, 95)
    fetch = api.fetch_image()
    trained = fetch({"image": load_image(io.BytesIO(buf.getvalue())), "max_pixels": max_pixels})
    assert (w, h) == trained.size and w % 28 == 0 and h % 28 == 0 and w * h <= max_pixels
    import base64

    assert url.startswith(b"data:image/jpeg;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(b",", 1)[1])))
    assert sent.size == trained.size
    diff = [abs(a - b) for a, b in zip(sent.convert("RGB").tobytes(), trained.tobytes())]
    assert sum(diff) / len(diff) < 4  # JPEG at quality 95: the same pixels to within compression noise
    # send_original: the file itself, and the size the server (resizing as training) will make of it
    url, w2, h2 = api.image_payload(buf.getvalue(), max_pixels, 95, original=True)
    assert url == b"data:image/png;base64," + base64.b64encode(buf.getvalue()) and (w2, h2) == (w, h)


def test_encoded_body_is_the_json_of_the_request():
    import json

    body = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": api.IMAGE_SLOT}}, {"type": "text", "text": 'a "b" \\ ü'}]}]}
    url = b"data:image/jpeg;base64,/9j/4AAQ+/=="
    got = json.loads(api.encode_body(body, url))
    assert got["messages"][0]["content"][0]["image_url"]["url"] == url.decode()
    assert got["messages"][0]["content"][1] == body["messages"][0]["content"][1]


def test_report_arithmetic_and_wording():
    r = {"requests": 12, "answered": 10, "cached": 2, "retried": {"http_429": 2}, "failed_rows": {},
         "tokens_in": 4000, "tokens_out": 100, "no_logprobs": ""}
    text = api.format_report({**r, "spent_usd": None, "projected_usd": None})
    assert "retried 2 (http_429 2)" in text and "set api.price_input_per_million" in text
    spent = 4000 * 2.5e-6 + 100 * 10e-6
    text = api.format_report({**r, "spent_usd": spent, "projected_usd": spent / 10 * 131187,
                              "projected_rows": 131187, "usd_per_1000_rows": spent / 10 * 1000})
    assert "spent $0.0110" in text and "all 131,187 rows of the input would cost ~$144.31" in text


@pytest.mark.parametrize("body,message", [
    ('{"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}', "Incorrect API key"),
    ('{"message": "API key error", "object": "error"}', "API key error"),
    ('{"detail": "Not Found"}', "Not Found"),
    ("<html><body>Bad Gateway</body></html>", "<html><body>Bad Gateway</body></html>"),
    ("", "(empty body)"),
])
def test_server_messages(body, message):
    assert api._server_message(body) == message


def test_serve_command(tmp_path, capsys):
    from amlc import serve, swift_plugin

    model = tmp_path / "merged"
    model.mkdir()
    (model / "amlc.json").write_text('{"max_pixels": 50176}')
    cmd, env = serve.deploy_command(str(model), name="m", host="127.0.0.1", port=8123)
    assert env["MAX_PIXELS"] == "50176" and env["HF_HUB_OFFLINE"] == "1"
    for flag, value in (("--served_model_name", "m"), ("--port", "8123"), ("--external_plugins",
                        swift_plugin.__file__), ("--template", "qwen2_vl"), ("--infer_backend", "transformers")):
        assert cmd[cmd.index(flag) + 1] == value
    cmd, _ = serve.deploy_command(str(model), name="m", host="0.0.0.0", port=1, backend="vllm", data_parallel=4,
                                  extra=["--api_key", "x"])
    assert cmd[cmd.index("--vllm_data_parallel_size") + 1] == "4" and cmd[-2:] == ["--api_key", "x"]
    assert serve.main(["--model", str(model), "--print", "--", "--vllm_max_model_len", "4096"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("MAX_PIXELS=50176 ") and "--served_model_name merged" in out and out.rstrip().endswith("4096")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(InputError, match="cannot listen on 127.0.0.1"):
            serve.main(["--model", str(model), "--port", str(s.getsockname()[1])])


# ---- the dataset stage's teacher rules ----

def _teacher_sample(tmp_path):
    rows = [  # (entity, label, split, teacher answer, confidence, reason)
        ("voltage", "12 V", "train", "12.0 volt", 0.9, ""),  # agrees
        ("voltage", "24 V", "train", "12.0 volt", 0.9, ""),  # contradicts
        ("item_weight", "5 g", "train", "", 0.95, "model_blank"),  # finds it unprinted, surely
        ("item_weight", "7 g", "train", "", 0.2, "model_blank"),  # unprinted, unsure
        ("wattage", "65 W", "train", "", 0.9, "unparseable"),  # answered nonsense
        ("width", "3 cm", "train", "", None, "error: api timeout: no answer"),  # never read
        ("height", "9 cm", "val", "4.0 centimetre", 0.9, ""),  # validation rows are never curated
        ("depth", "2 cm", "train", None, None, None),  # not in the teacher file
    ]
    sample, teacher, paths = [], [], {}
    for i, (entity, value, split, answer, conf, reason) in enumerate(rows):
        link = f"https://x.invalid/{i}.jpg"
        paths[link] = tmp_path / f"{i}.jpg"
        paths[link].write_bytes(b"jpeg")
        sample.append({"index": i, "image_link": link, "group_id": "1", "entity_name": entity,
                       "entity_value": value, "split": split})
        if answer is not None:
            teacher.append({"index": i, "teacher_answer": answer, "teacher_confidence": conf,
                            "teacher_reason": reason})
    tfile = tmp_path / "teacher.csv"
    pd.DataFrame(teacher).to_csv(tfile, index=False)
    from amlc.tables import read_csv

    return pd.DataFrame(sample), paths.get, read_csv(tfile, required=["index"])


@pytest.mark.parametrize("keep,abstain,min_conf,want", [
    (False, False, 0.0, {}),
    (True, False, 0.0, {1: "teacher_disagrees", 2: "teacher_disagrees", 3: "teacher_disagrees",
                        4: "teacher_disagrees"}),
    (False, True, 0.0, {2: "teacher_unprinted", 3: "teacher_unprinted"}),
    (True, True, 0.5, {1: "teacher_disagrees", 2: "teacher_unprinted", 4: "teacher_disagrees"}),
])
def test_teacher_rules(tmp_path, keep, abstain, min_conf, want):
    sample, find, teacher = _teacher_sample(tmp_path)
    report = swift_data.build(sample, find, tmp_path / "ds", teacher=teacher, teacher_keep_agreeing=keep,
                              teacher_abstain=abstain, teacher_min_confidence=min_conf, progress=False)
    table = pd.read_csv(tmp_path / "ds" / "dataset.csv", keep_default_na=False)
    got = {int(i): r for i, r in zip(table["index"], table["reason"]) if r}
    assert got == want
    statuses = dict(zip(table["index"], table["status"]))
    assert all(statuses[i] == ("abstain" if r == "teacher_unprinted" else "dropped") for i, r in want.items())
    counts = report.teacher
    assert counts["labelled"] == 5 and counts["agree"] == 1
    assert counts["teacher_disagrees"] == sum(r == "teacher_disagrees" for r in want.values())
    assert counts["teacher_unprinted"] == sum(r == "teacher_unprinted" for r in want.values())
    assert f"{counts['teacher_unprinted']} made abstentions as unprinted" in report.line()
    assert report.abstentions == counts["teacher_unprinted"]


def test_rows_the_teacher_agrees_with_are_kept_from_ocr_abstention(tmp_path):
    sample, find, teacher = _teacher_sample(tmp_path)
    report = swift_data.build(sample, find, tmp_path / "ds", teacher=teacher, abstention=True,
                              abstention_max_fraction=1.0, text_of=lambda p: "", progress=False)
    table = pd.read_csv(tmp_path / "ds" / "dataset.csv", keep_default_na=False).set_index("index")
    assert table.loc[0, "status"] == "value"  # OCR read nothing, but the teacher read 12 V there
    assert table.loc[1, "reason"] == "value_not_in_ocr" and report.teacher["agree"] == 1


def test_teacher_file_without_its_columns_is_an_error(tmp_path):
    sample, find, _ = _teacher_sample(tmp_path)
    with pytest.raises(InputError, match="teacher labels lack column"):
        swift_data.build(sample, find, tmp_path / "ds", teacher=pd.DataFrame({"index": [0]}), progress=False)


# ---- the command lines' bad input ----

def test_bad_input_is_one_line_and_a_pasted_key_is_never_saved(tmp_path, cli):
    csv = tmp_path / "in.csv"
    csv.write_text("index,image_link,group_id,entity_name\n0,http://x.invalid/a.jpg,1,width\n")
    pasted = "sk-proj-abc123"
    runs = {
        "inference/run.py": cli("inference/run.py", "--engine", "api", "--input", csv, "--images", tmp_path,
                                "--output_dir", tmp_path / "preds", "--no-download", f"api.api_key_env={pasted}"),
        "teacher, no sample": cli("-m", "amlc.teacher", "--sample", tmp_path / "none.csv", "--output", tmp_path / "t.csv"),
        "teacher, --max-rows 0": cli("-m", "amlc.teacher", "--sample", csv, "--output", tmp_path / "t.csv",
                                     "--max-rows", "0"),
        "serve, no model": cli("-m", "amlc.serve", "--model", tmp_path / "no-model"),
    }
    for what, r in runs.items():
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (what, r.stderr)
    assert pasted not in runs["inference/run.py"].stderr
    assert not any(pasted in p.read_text() for p in (tmp_path / "preds").rglob("*") if p.is_file())
