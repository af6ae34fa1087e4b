"""``harness view``: one self-contained HTML page of a run's episodes, turn by turn, as the model saw them.

The page lists every episode (filters: outcome, split, reward range; the filter state lives in the URL
fragment, so a link opens the same selection) and shows each conversation: the system prompt, each user
message with its images inline, the model's answers, and per turn the reward, the verifier's verdict and
its feedback. Texts come from the record (:mod:`harness.transcript`); images from the run's saved PNGs
(``--save-images``), checked against their digest, else drawn again by replaying the episode from its seed
with the recorded answers. A record made before harness recorded prompts is rebuilt the same way.

Everything in the page comes from files and is escaped (:func:`harness.escaping.html_text`); the page
loads nothing from anywhere (images are data URLs) and needs no server.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from harness import store, transcript
from harness.distributed import PART_PREFIX
from harness.escaping import html_text
from harness.index import RecordError, validate

if TYPE_CHECKING:
    from PIL.Image import Image

    from harness.types import TaskSpec

MAX_RECORD_BYTES = 64 << 20
MAX_SAVED_IMAGE_BYTES = 64 << 20
MAX_IMAGE_PIXELS = 64_000_000
PNG_MAX_BYTES = 64_000  # a page image whose PNG is larger is shown lossy (a page of street views stays small)
_CORE_TURN_FIELDS = ("answer", "reward", "feedback", "shown", "answer_truncated_from")


class ViewError(Exception):
    """A run directory that cannot be shown (the message names the file and why)."""


@dataclass
class RunData:
    run_dir: Path
    record: Mapping[str, Any]
    samples: list[dict[str, Any]]
    skipped_lines: int = 0
    notes: list[str] = field(default_factory=list)


def load_run(run_dir: Path) -> RunData:
    """A run's record and episodes, validated as a resume would validate them."""
    path = run_dir / "run.json"
    try:
        raw = path.read_bytes() if path.stat().st_size <= MAX_RECORD_BYTES else None
    except OSError as exc:
        raise ViewError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if raw is None:
        raise ViewError(f"{path}: larger than {MAX_RECORD_BYTES >> 20} MiB, not a run record")
    try:
        record = orjson.loads(raw)
        validate(record, path)
    except orjson.JSONDecodeError as exc:
        raise ViewError(f"{path}: not JSON ({exc})") from None
    except RecordError as exc:
        raise ViewError(str(exc)) from None
    scan = store.scan_samples(run_dir / "samples.jsonl")
    records, bad = dict(scan.records), scan.bad
    for part in sorted(run_dir.glob(f"{PART_PREFIX}*.jsonl")):  # a multi-process run still going, or killed
        more = store.scan_samples(part)
        records.update(more.records)
        bad += more.bad
    samples = [r for _, r in sorted(records.items())]
    data = RunData(run_dir, record, samples, bad)
    if scan.bad:
        data.notes.append(f"{scan.bad} line(s) of samples.jsonl are not valid episode records and are not shown")
    return data


# ------------------------------------------------------------------------------------------- images


def data_url(image: Image, max_side: int) -> tuple[str, str]:
    """An image for the page, at most ``max_side`` pixels on its long side, and how it is shown: PNG
    (lossless) when that is small, as flat drawings are, else WEBP (lossy, a third of a JPEG's size for
    street views; JPEG where Pillow has no WEBP)."""
    from PIL import features

    from harness_plugins.images import fit_rgb

    im = fit_rgb(image, max_side)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=6)
    data, how = buf.getvalue(), "PNG"
    if len(data) > PNG_MAX_BYTES:
        lossy = io.BytesIO()
        if features.check("webp"):
            im.save(lossy, format="WEBP", quality=80, method=2)
            how = "WEBP"
        else:
            im.save(lossy, format="JPEG", quality=85)
            how = "JPEG"
        data = lossy.getvalue()
    shown = f"shown as {how}" + ("" if how == "PNG" else " (lossy)") + (
        f" at {im.size[0]}x{im.size[1]}" if im.size != image.size else "")
    return f"data:image/{how.lower()};base64,{base64.b64encode(data).decode('ascii')}", shown


def load_saved(run_dir: Path, ref: Mapping[str, Any]) -> tuple[Image | None, str]:
    """The saved PNG of an image reference, checked against its digest: (image, note) or (None, why not)."""
    sha = ref.get("sha256")
    if not store.is_digest(sha):
        return None, ""
    path = transcript.ImageStore(run_dir).path(sha)
    try:
        if not path.is_file():
            return None, "its saved file is missing"
        if path.stat().st_size > MAX_SAVED_IMAGE_BYTES:
            return None, "its saved file is too large to be an image of this run"
        from PIL import Image as PILImage

        with PILImage.open(path) as im:
            if im.format != "PNG" or im.size[0] * im.size[1] > MAX_IMAGE_PIXELS:
                return None, "its saved file is not a PNG of a plausible size"
            im.load()
            loaded = im.copy()
    except Exception as exc:  # a damaged or hostile file: never fatal
        return None, f"its saved file cannot be read ({type(exc).__name__})"
    if transcript.digest(loaded) != sha:
        return None, "its saved file does not match the recorded digest"
    return loaded, "saved with the run (digest checked)"


# ------------------------------------------------------------------------------------------- episodes


@dataclass
class Shown:
    """What one turn showed, ready for the page."""

    text: str | None
    text_note: str
    images: list[tuple[str | None, str]]  # (data URL or None, caption)


class EpisodeImages:
    """Resolves a recorded episode's texts and images: from the record and saved files first, by replaying
    the episode (once, lazily) for the rest."""

    def __init__(self, run: RunData, sample: Mapping[str, Any], task: TaskSpec | None, task_note: str,
                 max_side: int, env_cache: dict[str, Any]) -> None:
        self.run, self.sample, self.task, self.task_note = run, sample, task, task_note
        self.max_side = max_side
        self.env_cache = env_cache
        self._replay: transcript.Replay | None = None

    def replayed(self) -> transcript.Replay | None:
        if self.task is None:
            return None
        if self._replay is None:
            key = str(self.run.run_dir)
            env = self.env_cache.get(key)
            if env is None:
                try:
                    env = self.env_cache[key] = transcript.make_env(self.task, self.run.record)
                except Exception as exc:
                    self._replay = transcript.Replay([], None, f"{type(exc).__name__}: {exc}")
                    return self._replay
            self._replay = transcript.replay(self.task, self.run.record, self.sample, env)
        return self._replay

    def _replayed_obs(self, k: int) -> tuple[Any, str]:
        rp = self.replayed()
        if rp is None:
            return None, self.task_note
        if rp.diverged is not None and k > rp.diverged:
            return None, f"the replay left the recorded path at turn {rp.diverged + 1} (the task has changed)"
        obs = rp.observations[k] if k < len(rp.observations) else None
        if obs is None:
            return None, f"the replay stopped: {rp.error}" if rp.error else "the replay ended before this turn"
        return obs, ""

    def turn(self, k: int, text: str | None) -> Shown:
        t = self.sample["turns"][k]
        shown = t.get("shown") if isinstance(t.get("shown"), Mapping) else None
        note = ""
        if text is None:
            obs, why = self._replayed_obs(k)
            if obs is not None and isinstance(obs.text, str):
                text, note = obs.text, "not in the record (an older run): rebuilt by replaying the episode"
            else:
                note = "not in the record, and cannot be rebuilt: " + why
        refs = [r for r in (shown.get("images") or [])] if shown else None
        images: list[tuple[str | None, str]] = []
        if refs is None:  # an old record: whatever the replay shows
            obs, why = self._replayed_obs(k)
            for im in (obs.images if obs is not None else ()):
                url, shown_as = data_url(im, self.max_side)
                images.append((url, f"{im.size[0]}x{im.size[1]} {im.mode}, re-rendered from the seed (not in the "
                                    f"record); {shown_as}"))
            return Shown(text, note, images)
        for pos, ref in enumerate(refs):
            images.append(self._image(k, pos, ref))
        return Shown(text, note, images)

    def _image(self, k: int, pos: int, ref: Mapping[str, Any]) -> tuple[str | None, str]:
        size = f"{ref['size'][0]}x{ref['size'][1]} {ref['mode']}"
        saved, why_not = load_saved(self.run.run_dir, ref)
        if saved is not None:
            url, shown_as = data_url(saved, self.max_side)
            return url, f"{size}, {why_not}; {shown_as}"
        obs, why = self._replayed_obs(k)
        ims = obs.images if obs is not None else ()
        if pos >= len(ims):
            return None, f"{size}: cannot be shown ({why or 'the replay showed fewer images'})"
        im = ims[pos]
        if list(im.size) != list(ref["size"]) or im.mode != ref["mode"]:
            return None, (f"{size}: the replay drew a {im.size[0]}x{im.size[1]} {im.mode} image instead (the task "
                          "has changed)")
        how = "re-rendered from the episode seed"
        if store.is_digest(ref.get("sha256")):
            same = transcript.digest(im) == ref["sha256"]
            how += ", identical to what the model saw" if same else ", and it DIFFERS from what the model saw"
        if why_not:
            how += f" ({why_not})"
        url, shown_as = data_url(im, self.max_side)
        return url, f"{size}, {how}; {shown_as}"


# ------------------------------------------------------------------------------------------- HTML


def _fmt_reward(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return "?"
    return f"{x:+g}"


def _short_json(v: Any, limit: int = 400) -> str:
    text = v if isinstance(v, str) else store.dumps(v).decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "…"


def _outcome(sample: Mapping[str, Any]) -> str:
    if sample.get("status") != "ok":
        return "failed"
    return "solved" if sample.get("success") is True else "unsolved"


def _fields(pairs: Sequence[tuple[str, Any]]) -> str:
    return "".join(f"<span class=kv><b>{html_text(k)}</b> {html_text(_short_json(v))}</span>" for k, v in pairs)


def _turn_html(k: int, t: Mapping[str, Any], shown: Shown, system: str | None, restart: bool) -> str:
    parts = [f"<section class=turn><h4>turn {k + 1}</h4>"]
    if restart:
        parts.append("<p class=restart>a new conversation starts here: the task re-prompts with its whole state</p>")
    if system is not None:
        parts.append(f"<div class='msg system'><span class=role>system</span><pre>{html_text(system)}</pre></div>")
    user = ["<div class='msg user'><span class=role>user</span>"]
    for url, caption in shown.images:
        img = (f"<img src='{url}' alt='the image the model was shown'>" if url
               else "<div class=noimg>image not available</div>")
        user.append(f"<figure>{img}<figcaption>{html_text(caption)}</figcaption></figure>")
    if shown.text is not None:
        user.append(f"<pre>{html_text(shown.text)}</pre>")
    if shown.text_note:
        user.append(f"<p class=note>{html_text(shown.text_note)}</p>")
    user.append("</div>")
    parts.extend(user)
    answer = t.get("answer") if isinstance(t.get("answer"), str) else ""
    cut = t.get("answer_truncated_from")
    parts.append(f"<div class='msg assistant'><span class=role>model</span><pre>{html_text(answer)}</pre>")
    if type(cut) is int and cut > len(answer):
        parts.append(f"<p class=note>{cut - len(answer)} more characters were cut from this answer</p>")
    parts.append("</div>")
    reward = t.get("reward")
    sign = "pos" if isinstance(reward, int | float) and reward > 0 else "neg" if isinstance(reward, int | float) \
        and reward < 0 else "zero"
    extra = [(key, v) for key, v in t.items() if key not in _CORE_TURN_FIELDS]
    feedback = t.get("feedback") if isinstance(t.get("feedback"), str) else ""
    parts.append(f"<div class=verdict><span class='reward {sign}'>reward {html_text(_fmt_reward(reward))}</span>"
                 f"{_fields(extra)}")
    if feedback:
        parts.append(f"<div class=feedback><b>feedback</b> {html_text(feedback)}</div>")
    parts.append("</div></section>")
    return "".join(parts)


def _episode_html(run_no: int, run: RunData, sample: Mapping[str, Any], images: EpisodeImages) -> str:
    rec = run.record
    turns = sample["turns"]
    texts = transcript.turn_texts(turns)
    split = f"{rec.get('task')}/{rec.get('split')}"
    outcome = _outcome(sample)
    reward = sample.get("reward")
    anchor = f"ep-{run_no}-{sample['index']}"
    head = (f"<span class=idx>#{sample['index']}</span> <span class=split>{html_text(split)}</span> "
            f"<span class='outcome {outcome}'>{outcome}</span> <span>reward {html_text(_fmt_reward(reward))}</span> "
            f"<span>{len(turns)} turn{'s' if len(turns) != 1 else ''}</span>")
    body = []
    if sample.get("error"):
        body.append(f"<p class=error>{html_text(sample['error'])}</p>")
    for k, t in enumerate(turns):
        shown = t.get("shown") if isinstance(t.get("shown"), Mapping) else {}
        restart = k > 0 and shown.get("new_context") is True
        system = shown.get("system") if shown.get("new_context") is True and isinstance(shown.get("system"), str) \
            else None
        body.append(_turn_html(k, t, images.turn(k, texts[k]), system, restart))
    info = [("episode seed", sample.get("episode_seed")), *sorted((sample.get("metrics") or {}).items()),
            *sorted((sample.get("details") or {}).items())]
    body.append(f"<div class=details>{_fields(info)}</div>")
    return (f"<li class=episode id='{anchor}' data-outcome='{outcome}' data-split='{html_text(split)}' "
            f"data-reward='{html_text(reward if isinstance(reward, int | float) else 'NaN')}'>"
            f"<details><summary>{head}</summary>{''.join(body)}</details></li>")


def _run_header(run: RunData) -> str:
    rec = run.record
    model = rec.get("model") or {}
    sr = (rec.get("metrics") or {}).get("success_rate") or {}
    rate = "–"
    if isinstance(sr.get("value"), int | float) and math.isfinite(sr["value"]):
        rate = f"{100 * sr['value']:.1f}%"
        if all(isinstance(sr.get(k), int | float) and math.isfinite(sr[k]) for k in ("ci_low", "ci_high")):
            rate += f" [{100 * sr['ci_low']:.1f}, {100 * sr['ci_high']:.1f}]"
    cells = [rec.get("run_id"), f"{rec.get('task')}/{rec.get('split')}", model.get("name"), rec.get("status"), rate,
             f"{len(run.samples)} / {rec.get('episodes')}"]
    notes = "".join(f"<div class=note>{html_text(n)}</div>" for n in run.notes)
    row = "<tr>" + "".join(f"<td>{html_text(c)}</td>" for c in cells) + "</tr>"
    return row + (f"<tr><td colspan=6>{notes}</td></tr>" if notes else "")


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f5f6f8}
header{background:#fff;border-bottom:1px solid #d8dce3;padding:12px 20px}
h1{font-size:18px;margin:0 0 6px} table{border-collapse:collapse;margin:4px 0 8px} td,th{padding:2px 10px 2px 0;
text-align:left;vertical-align:top} th{font-weight:600;color:#5a6472}
#filters{display:flex;gap:14px;align-items:center;flex-wrap:wrap} #filters label{color:#5a6472}
#filters input{width:5em} #count{color:#5a6472;margin-left:auto}
ol#episodes{list-style:none;margin:0;padding:12px 20px}
li.episode{background:#fff;border:1px solid #d8dce3;border-radius:6px;margin:0 0 8px}
summary{cursor:pointer;padding:8px 12px;display:flex;gap:14px;align-items:baseline}
.idx{font-weight:600;min-width:4em} .split{color:#5a6472}
.outcome{font-weight:600;border-radius:3px;padding:0 6px} .solved{background:#dff3e4;color:#17612d}
.unsolved{background:#fbe4e4;color:#8c1c1c} .failed{background:#fff0cc;color:#7a5200}
section.turn{border-top:1px solid #eceef2;padding:8px 14px} h4{margin:4px 0;color:#5a6472;font-size:12px;
text-transform:uppercase;letter-spacing:.04em}
.msg{border-radius:6px;padding:6px 10px;margin:6px 0;position:relative} .role{font-size:11px;color:#5a6472;
text-transform:uppercase} .system{background:#f0f0f0} .user{background:#eef4ff} .assistant{background:#effaf1}
pre{white-space:pre-wrap;word-break:break-word;margin:4px 0;font:12.5px/1.4 ui-monospace,monospace;
max-height:28em;overflow:auto}
figure{margin:6px 0} img{max-width:min(100%,640px);height:auto;border:1px solid #cfd5de;display:block}
figcaption,.note{font-size:12px;color:#5a6472} .restart{font-size:12px;color:#7a5200;margin:2px 0}
.verdict{display:flex;flex-wrap:wrap;gap:10px;align-items:baseline;font-size:13px;margin:4px 0}
.reward{font-weight:600;border-radius:3px;padding:0 6px} .pos{background:#dff3e4} .neg{background:#fbe4e4}
.zero{background:#eceef2} .kv b{color:#5a6472;font-weight:600} .feedback{flex-basis:100%}
.details{padding:8px 14px;border-top:1px solid #eceef2;display:flex;flex-wrap:wrap;gap:12px;font-size:12px}
.error{color:#8c1c1c;padding:0 14px} .noimg{padding:20px;background:#fbe4e4;color:#8c1c1c}
"""

_JS = """
(function(){
const $=id=>document.getElementById(id), keys=[['success','f-success'],['split','f-split'],['rmin','f-rmin'],
  ['rmax','f-rmax']];
function apply(){
  const s=$('f-success').value, sp=$('f-split').value, lo=parseFloat($('f-rmin').value),
    hi=parseFloat($('f-rmax').value);
  let shown=0, total=0;
  for(const li of document.querySelectorAll('li.episode')){
    total++;
    const r=parseFloat(li.dataset.reward);
    const ok=(s==='all'||li.dataset.outcome===s)&&(sp==='all'||li.dataset.split===sp)&&(isNaN(lo)||r>=lo)&&
      (isNaN(hi)||r<=hi);
    li.hidden=!ok; if(ok) shown++;
  }
  $('count').textContent='showing '+shown+' of '+total+' episodes';
}
function fromHash(){
  const p=new URLSearchParams(location.hash.slice(1));
  for(const [k,id] of keys){
    if(!p.has(k)) continue;
    const el=$(id), v=p.get(k);
    if(el.tagName==='SELECT'){ if([...el.options].some(o=>o.value===v)) el.value=v; } else el.value=v;
  }
  apply();
  const open=p.get('open'), li=open&&document.getElementById(open);
  if(li){ li.querySelector('details').open=true; if(li.getBoundingClientRect().top>innerHeight/2) li.scrollIntoView(); }
}
function toHash(){
  const p=new URLSearchParams();
  for(const [k,id] of keys){ const v=$(id).value; if(v&&v!=='all') p.set(k,v); }
  history.replaceState(null,'','#'+p.toString());
  apply();
}
for(const [,id] of keys) $(id).addEventListener('input',toHash);
$('filters').addEventListener('submit',e=>e.preventDefault());
window.addEventListener('hashchange',fromHash);
window.addEventListener('load',function(){
  let ok=0; const imgs=document.querySelectorAll('img');
  for(const im of imgs){
    if(im.complete&&im.naturalWidth>0){ ok++; continue; }
    const n=document.createElement('div'); n.className='noimg'; n.textContent='image could not be shown';
    im.replaceWith(n);
  }
  document.body.dataset.images=ok+'/'+imgs.length;
});
fromHash();
})();
"""


# Only this script may run in the page (CSP by hash): text that escaped its escaping still could not execute.
_SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()


def render_page(runs: Sequence[RunData], episodes: Iterator[str], title: str) -> str:
    splits = sorted({f"{r.record.get('task')}/{r.record.get('split')}" for r in runs})
    options = "".join(f"<option value='{html_text(s)}'>{html_text(s)}</option>" for s in splits)
    header_rows = "".join(_run_header(r) for r in runs)
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; img-src data:; "
        f"style-src 'unsafe-inline'; script-src '{_SCRIPT_HASH}'\">"
        f"<title>{html_text(title)}</title><style>{_CSS}</style></head><body><header>"
        f"<h1>{html_text(title)}</h1><table><tr><th>run</th><th>task/split</th><th>model</th><th>status</th>"
        f"<th>success [95% CI]</th><th>episodes shown / run</th></tr>{header_rows}</table>"
        "<form id=filters>"
        "<label>outcome <select id=f-success><option value=all>all</option><option value=solved>solved</option>"
        "<option value=unsolved>unsolved</option><option value=failed>failed (error)</option></select></label>"
        f"<label>split <select id=f-split><option value=all>all</option>{options}</select></label>"
        "<label>reward from <input id=f-rmin type=number step=any></label>"
        "<label>to <input id=f-rmax type=number step=any></label><span id=count></span></form></header>"
        f"<ol id=episodes>{''.join(episodes)}</ol><script>{_JS}</script></body></html>")


def build(runs: Sequence[RunData], resolve_task: Callable[[Mapping[str, Any]], tuple[TaskSpec | None, str]], *,
          limit: int, max_side: int = 768, progress: Callable[[int, int], None] | None = None) -> str:
    """The page for ``runs``: at most ``limit`` episodes of each, in index order. ``resolve_task(record)``
    gives the task to replay episodes with, or None and why not."""
    total = sum(min(limit, len(r.samples)) for r in runs)
    done = [0]
    tasks = [resolve_task(r.record) for r in runs]
    for run, (task, note) in zip(runs, tasks, strict=True):
        if note:
            run.notes.append(note + ("; texts and images missing from the record are re-rendered with today's code"
                                     if task is not None else ""))

    def episodes() -> Iterator[str]:
        for no, run in enumerate(runs):
            task, note = tasks[no]
            envs: dict[str, Any] = {}
            for sample in run.samples[:limit]:
                yield _episode_html(no, run, sample, EpisodeImages(run, sample, task, note, max_side, envs))
                done[0] += 1
                if progress:
                    progress(done[0], total)

    for run in runs:
        if len(run.samples) > limit:
            run.notes.append(f"the first {limit} of {len(run.samples)} recorded episodes are shown (--limit)")
    names = ", ".join(str(r.record.get("run_id")) for r in runs)
    title = f"harness view: {names}" if len(runs) == 1 else f"harness view: {len(runs)} runs"
    return render_page(runs, episodes(), title)


def task_resolver(registry: Any) -> Callable[[Mapping[str, Any]], tuple[TaskSpec | None, str]]:
    """Looks a run's task up in the installed plugins, and says when its code differs from the run's."""
    def resolve(record: Mapping[str, Any]) -> tuple[TaskSpec | None, str]:
        name = str(record.get("task"))
        try:
            task = registry.task(name)
        except Exception:
            return None, f"task {name!r} is not installed here, so nothing can be re-rendered"
        ran = _dig(record, "plugins", "task", "id")
        now = _dig(registry.provenance(name), "task", "id")
        if ran and now and ran != now:
            return task, f"the task's code differs from the run's ({now} now, {ran} then)"
        return task, ""
    return resolve


def _dig(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]...`` where every level is a mapping, else None (records are untrusted)."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


__all__ = ["RunData", "ViewError", "build", "data_url", "load_run", "load_saved", "render_page", "task_resolver"]
