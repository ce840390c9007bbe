"""Spawn options: their validation, the spawn form built from the catalog, and reading it back.

`user_options` arrive from the spawn form or straight from a REST spawn (whose body is the bare
options object), so both paths end in `validate_options`, which mirrors the contract's
`SpawnOptions` schema (contract/src/index.ts).

A spawn may name a size (`gpu-t4`) or a pair of packages, a CPU package with a GPU package
(`{"cpu": "m", "gpu": "t4"}`, contract/src/packages.ts); a pair is passed on as its size id `m.t4`,
which the service resolves like any size. The form offers both: the named sizes, and two selects
that combine packages, each pair priced on the chosen cloud with what it gives beyond the ask.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from html import escape
from typing import Any

from .errors import SpawnError

CLOUDS = ("local", "aws", "gcp", "azure")
OPTION_KEYS = ("size", "cpu", "gpu", "cloud", "region", "spot", "spotFallback", "onPreemption")
# the packages a pair combines, as the contract names them (contract/src/packages.ts)
CPU_PACKAGES = ("s", "m", "l", "xl")
GPU_PACKAGES = ("none", "t4", "l4", "a10g", "v100", "a100", "a100x8", "h100x8")
ON_PREEMPTION = ("on-demand", "spot", "stop")
SIZE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
REGION_MAX = 64

CLOUD_LABELS = {"local": "This machine", "aws": "AWS", "gcp": "Google Cloud", "azure": "Azure"}
# The cloud menu's "Automatic" entry: its value is empty, so the form sends no cloud and the
# service places the start where the size costs the organisation least after credits.
AUTOMATIC = ""
AUTOMATIC_LABEL = "Automatic (least cost for your organisation)"

_TRUE_WORDS = {"on", "true", "1", "yes"}


def invalid(message: str) -> SpawnError:
    return SpawnError(f"Invalid server options: {message}", code="validation_failed")


def validate_options(options: Any, *, default_size: str = "") -> dict[str, Any]:
    """Check `user_options` and return a clean copy; raise `SpawnError` (400) when they are wrong.

    `default_size` fills in a spawn that carries no options at all (the admin panel's start
    button, a bare REST spawn); any other spawn must name its size.
    """
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise invalid('expected an object such as {"size": "gpu-t4"}')
    if not options and default_size:
        options = {"size": default_size}

    unknown = sorted(str(key) for key in options if key not in OPTION_KEYS)
    if unknown:
        raise invalid(f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(OPTION_KEYS)}")

    size = options.get("size")
    cpu, gpu = options.get("cpu"), options.get("gpu")
    if size is not None and (cpu is not None or gpu is not None):
        raise invalid("give either size or cpu (with gpu), not both")
    if size is None and cpu is None:
        if gpu is not None:
            raise invalid(f"gpu needs cpu as well (a CPU package: {', '.join(CPU_PACKAGES)})")
        raise invalid('size is required, e.g. {"size": "gpu-t4"} or {"cpu": "m", "gpu": "t4"}')
    if cpu is not None:
        if cpu not in CPU_PACKAGES:
            raise invalid(f"cpu must be a CPU package: {', '.join(CPU_PACKAGES)}")
        gpu = "none" if gpu is None else gpu
        if gpu not in GPU_PACKAGES:
            raise invalid(f"gpu must be a GPU package: {', '.join(GPU_PACKAGES)}")
        size = f"{cpu}.{gpu}"
    if not isinstance(size, str) or not SIZE_PATTERN.match(size):
        raise invalid("size must be a size id such as cpu-small or gpu-a100")
    clean: dict[str, Any] = {"size": size}

    if "cloud" in options:
        cloud = options["cloud"]
        if cloud not in CLOUDS:
            raise invalid(f"cloud must be one of {', '.join(CLOUDS)}")
        clean["cloud"] = cloud
    if "region" in options:
        region = options["region"]
        if not isinstance(region, str) or len(region) > REGION_MAX:
            raise invalid(f"region must be a string of at most {REGION_MAX} characters")
        clean["region"] = region
    if "spot" in options:
        # bool only: "false" would be truthy, and 0/1 are easy to send by mistake
        if not isinstance(options["spot"], bool):
            raise invalid("spot must be true or false")
        clean["spot"] = options["spot"]
    if "spotFallback" in options:
        if not isinstance(options["spotFallback"], bool):
            raise invalid("spotFallback must be true or false")
        # only a spot start can fall back to on demand
        if options["spotFallback"] and clean.get("spot"):
            clean["spotFallback"] = True
    if "onPreemption" in options:
        choice = options["onPreemption"]
        if choice not in ON_PREEMPTION:
            raise invalid(f"onPreemption must be one of {', '.join(ON_PREEMPTION)}")
        # only a spot machine is taken back by the cloud
        if clean.get("spot"):
            clean["onPreemption"] = choice
    return clean


def options_from_form(form_data: Mapping[str, Any]) -> dict[str, Any]:
    """Form fields (lists of strings, as the hub hands them over) to validated `user_options`."""

    def first(key: str) -> str:
        value = form_data.get(key)
        if isinstance(value, list | tuple):
            value = value[0] if value else ""
        return value.strip() if isinstance(value, str) else ""

    options: dict[str, Any] = {}
    for key in ("size", "cloud", "region"):
        if value := first(key):
            options[key] = value
    # a CPU package chosen in the form's pair selects wins over the size radio
    if cpu := first("cpu"):
        options.pop("size", None)
        options["cpu"] = cpu
        options["gpu"] = first("gpu") or "none"
    # an unchecked checkbox is simply absent from the form
    options["spot"] = first("spot").lower() in _TRUE_WORDS
    options["spotFallback"] = first("spotFallback").lower() in _TRUE_WORDS
    # empty: your default (ngsci preemption), else the admin's
    if value := first("onPreemption"):
        options["onPreemption"] = value
    return validate_options(options)


# ---- the spawn form


def format_price(micros: int) -> str:
    """Micro-dollars per hour as the form shows them, never rounded: 526000 -> "$0.526/h".

    The contract's rule for unit prices and rates (contract/src/figures.ts formatRate; its test
    vectors, contract/fixtures/money-format.json, check this copy too): at least 2 decimals, as
    many as the exact value needs, so the form shows the same rate as the sidebar and the bill.
    """
    micros = int(micros)
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    decimals = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}${whole:,}.{decimals}/h"


def _prices_by_cloud(size: Mapping[str, Any]) -> dict[str, dict[str, str | None]]:
    """The cheapest available on-demand and spot price of a size in each cloud."""
    best: dict[str, dict[str, int | None]] = {}
    for offer in size.get("offers") or []:
        if not offer.get("available"):
            continue
        cloud = str(offer["cloud"])
        on_demand = int(offer["onDemandMicrosPerHour"])
        spot = offer.get("spotMicrosPerHour")
        spot = int(spot) if spot is not None else None
        seen = best.setdefault(cloud, {"onDemand": on_demand, "spot": spot})
        current = seen["onDemand"]
        seen["onDemand"] = on_demand if current is None else min(current, on_demand)
        if spot is not None:
            seen["spot"] = spot if seen["spot"] is None else min(seen["spot"], spot)
    return {
        cloud: {
            "onDemand": format_price(p["onDemand"] if p["onDemand"] is not None else 0),
            "spot": format_price(p["spot"]) if p["spot"] is not None else None,
        }
        for cloud, p in best.items()
    }


def price_text(prices: Mapping[str, str | None] | None, *, spot: bool, cloud_label: str) -> str:
    # Must say the same as the inline script below, which redoes this in the browser.
    if not prices:
        return f"not offered on {cloud_label}"
    if spot and prices.get("spot"):
        text = f"{prices['spot']} spot"
    elif spot:
        text = f"{prices.get('spotOnDemand') or prices['onDemand']} (no spot offer)"
    else:
        text = str(prices["onDemand"])
    # "Automatic": where the service would place it, and why
    where = prices.get("spotWhere" if spot else "where")
    return f"{text} {where}" if where else text


def _automatic_choice(
    size_id: str,
    prices: Mapping[str, Mapping[str, str | None]],
    placements: Mapping[str, Any],
    spot_placements: Mapping[str, Any] | None,
    default_cloud: str,
) -> tuple[dict[str, str | None] | None, str | None, dict[str, str]]:
    """A size's prices under "Automatic", as the service would place it, and its runway clouds.

    The service places a start that names no cloud by the catalog's `placements` (on demand) or
    `spotPlacements` (spot; a service that does not send them: as on demand, a guess); a size
    offered on one cloud only has none and goes to the default cloud (hub-service
    instances/lifecycle.ts `choice`). Returns the prices (with `where` and
    `spotWhere` saying which cloud and why), the reason it cannot be placed when it cannot, and
    which cloud each of on demand and spot lands on.
    """

    def pick(placed: Any) -> tuple[str, str]:
        if isinstance(placed, Mapping) and str(placed.get("cloud")) in prices:
            return str(placed["cloud"]), str(placed.get("reason") or "")
        return default_cloud, f"on {CLOUD_LABELS.get(default_cloud, default_cloud)}"

    cloud, where = pick(placements.get(size_id))
    spot_cloud, spot_where = pick(
        placements.get(size_id) if spot_placements is None else spot_placements.get(size_id)
    )
    if not prices:
        return None, "not offered on any of this hub's clouds", {}
    if cloud not in prices:
        only = ", ".join(CLOUD_LABELS.get(c, c) for c in prices)
        return None, f"offered only on {only}: choose it in the cloud menu", {}
    spot_prices = prices.get(spot_cloud) or {}
    entry: dict[str, str | None] = {
        "onDemand": prices[cloud]["onDemand"],
        "where": where,
        # no spot offer where spot would go: say so with the on-demand price there, as for one
        # cloud (the start is refused there, or falls back to on demand when allowed)
        "spot": spot_prices.get("spot"),
        "spotWhere": spot_where,
    }
    if not spot_prices.get("spot") and spot_cloud != cloud and spot_prices:
        entry["spotOnDemand"] = spot_prices["onDemand"]
    return entry, None, {"onDemand": cloud, "spot": spot_cloud}


def format_runway(seconds: int) -> str:
    """`3 h 12 min`, `45 min`, `< 1 min`, `2 d 4 h` (as the contract's `formatRunway`)."""
    minutes = max(0, int(seconds)) // 60
    if minutes < 1:
        return "< 1 min"
    hours = minutes // 60
    if hours < 1:
        return f"{minutes} min"
    days = hours // 24
    if days < 1:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def runway_text(entry: Mapping[str, Any]) -> str:
    """The line under a size: its runway and idle timeout, or why the quota forbids it."""
    forbidden = entry.get("forbidden")
    if forbidden:
        return f"Not allowed: {forbidden['reason']}"
    parts = []
    if entry.get("runwaySeconds") is not None:
        parts.append(f"{format_runway(int(entry['runwaySeconds']))} left in your budget")
    idle = int(entry.get("idleTimeoutSeconds") or 0)
    parts.append(f"stops after {format_runway(idle)} idle" if idle > 0 else "no idle stop")
    return " \u00b7 ".join(parts)


def _runway_by_choice(catalog: Mapping[str, Any]) -> dict[str, dict[str, dict[str, str]]]:
    """size -> cloud -> {"onDemand", "spot"} -> the runway line, from the catalog's `runway`."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for entry in catalog.get("runway") or []:
        by_cloud = out.setdefault(str(entry["size"]), {}).setdefault(str(entry["cloud"]), {})
        by_cloud["spot" if entry.get("spot") else "onDemand"] = runway_text(entry)
    return out


def _absent_reasons(size: Mapping[str, Any]) -> dict[str, str]:
    """cloud -> why a size is not there, for a simulated GPU size on `local` (no GPU, no price)."""
    return {
        str(o["cloud"]): "not on this machine: it has no GPU"
        for o in size.get("offers") or []
        if o.get("simulated") and not o.get("available")
    }


def _forbidden_sizes(catalog: Mapping[str, Any]) -> set[str]:
    return {str(e["size"]) for e in catalog.get("runway") or [] if e.get("forbidden")}


def _describe_size(size: Mapping[str, Any]) -> str:
    parts = [f"{size['vcpu']} vCPU", f"{float(size['memoryGiB']):g} GiB"]
    gpu = size.get("gpu")
    if gpu:
        parts.append(f"{gpu['count']}\u00d7 {gpu['model']} ({float(gpu['memoryGiB']):g} GiB)")
    return " \u00b7 ".join(parts)


# Re-prices the sizes when the cloud or spot choice changes; data comes from data-* attributes,
# so nothing from the catalog is ever interpolated into script.
_SCRIPT = """<script>
(function () {
  var root = document.getElementById('ngsci-options');
  if (!root) return;
  var cloud = root.querySelector('select[name="cloud"]');
  var spot = root.querySelector('input[name="spot"]');
  function update() {
    var chosen = cloud ? cloud.value : '';
    var label = cloud && cloud.selectedIndex >= 0 ? cloud.options[cloud.selectedIndex].text : '';
    var useSpot = !!(spot && spot.checked);
    root.querySelectorAll('.ngsci-size').forEach(function (row) {
      var prices = JSON.parse(row.getAttribute('data-prices'))[chosen];
      var input = row.querySelector('input[name="size"]');
      var out = row.querySelector('.ngsci-price');
      var runways = JSON.parse(row.getAttribute('data-runway') || '{}')[chosen] || {};
      var runway = row.querySelector('.ngsci-runway');
      if (runway) runway.textContent = (useSpot && runways.spot) || runways.onDemand || '';
      input.disabled = !prices || row.hasAttribute('data-forbidden');
      var placed = row.querySelector('.ngsci-placement');
      if (placed) placed.hidden = chosen === '';
      if (!prices) {
        input.checked = false;
        var absent = JSON.parse(row.getAttribute('data-absent') || '{}')[chosen];
        out.textContent = absent || 'not offered on ' + label;
        return;
      }
      var text = useSpot && prices.spot
        ? prices.spot + ' spot'
        : useSpot
          ? (prices.spotOnDemand || prices.onDemand) + ' (no spot offer)'
          : prices.onDemand;
      var where = useSpot ? prices.spotWhere : prices.where;
      out.textContent = where ? text + ' ' + where : text;
    });
  }
  if (cloud) cloud.addEventListener('change', update);
  if (spot) spot.addEventListener('change', update);
})();
</script>"""

_STYLE = """<style>
#ngsci-options .ngsci-size { display: block; margin: 0.25em 0; font-weight: normal; }
#ngsci-options .ngsci-size-spec { color: #555; }
#ngsci-options .ngsci-price { font-weight: bold; margin-left: 0.5em; }
#ngsci-options .ngsci-note { color: #555; font-size: 90%; }
#ngsci-options .ngsci-runway { display: block; margin-left: 1.5em; color: #555; font-size: 90%; }
#ngsci-options .ngsci-size[data-forbidden] .ngsci-runway { color: #a94442; }
#ngsci-options .ngsci-placement[hidden] { display: none; }
#ngsci-options .ngsci-pair-price { display: block; margin-top: 0.25em; font-weight: bold; }
</style>"""


def _pair_offers(pair: Mapping[str, Any]) -> dict[str, dict[str, str | None]]:
    """cloud -> the pair's price there and what it gives beyond the ask, or why it is not there."""
    out: dict[str, dict[str, str | None]] = {}
    for offer in pair.get("offers") or []:
        cloud = str(offer["cloud"])
        if offer.get("available"):
            spot = offer.get("spotMicrosPerHour")
            fit = offer.get("fit") or {}
            out[cloud] = {
                "onDemand": format_price(int(offer["onDemandMicrosPerHour"])),
                "spot": format_price(int(spot)) if spot is not None else None,
                "machine": str(offer.get("instanceType") or ""),
                "beyond": fit.get("beyondAsk"),
            }
        else:
            out[cloud] = {"unavailable": str(offer.get("note") or "not offered")}
    return out


def pair_text(entry: Mapping[str, str | None] | None, *, spot: bool, cloud_label: str) -> str:
    # Must say the same as the pair script below, which redoes this in the browser.
    if not entry:
        return f"not offered on {cloud_label}"
    # "Automatic": the default cloud's offer, which names its cloud
    cloud_label = entry.get("cloudLabel") or cloud_label
    if entry.get("unavailable"):
        return f"unavailable on {cloud_label}: {entry['unavailable']}"
    price = price_text(entry, spot=spot, cloud_label=cloud_label)
    text = f"{price} on {entry['machine']}"
    if entry.get("cloudLabel"):
        text += f" ({cloud_label})"
    return f"{text}; {entry['beyond']}" if entry.get("beyond") else text


_PAIR_SCRIPT = """<script>
(function () {
  var root = document.getElementById('ngsci-options');
  var box = root && root.querySelector('.ngsci-pairs');
  if (!box) return;
  var offers = JSON.parse(box.getAttribute('data-pairs'));
  var cloud = root.querySelector('select[name="cloud"]');
  var spot = root.querySelector('input[name="spot"]');
  var cpu = box.querySelector('select[name="cpu"]');
  var gpu = box.querySelector('select[name="gpu"]');
  var out = box.querySelector('.ngsci-pair-price');
  function update() {
    if (!cpu.value) { out.textContent = ''; return; }
    var label = cloud && cloud.selectedIndex >= 0 ? cloud.options[cloud.selectedIndex].text : '';
    var e = (offers[cpu.value + '.' + gpu.value] || {})[cloud ? cloud.value : ''];
    var useSpot = !!(spot && spot.checked);
    if (!e) { out.textContent = 'not offered on ' + label; return; }
    if (e.cloudLabel) label = e.cloudLabel;
    if (e.unavailable) {
      out.textContent = 'unavailable on ' + label + ': ' + e.unavailable;
      return;
    }
    var price = useSpot && e.spot
      ? e.spot + ' spot'
      : e.onDemand + (useSpot ? ' (no spot offer)' : '');
    out.textContent = price + ' on ' + e.machine + (e.cloudLabel ? ' (' + label + ')' : '') +
      (e.beyond ? '; ' + e.beyond : '');
  }
  [cloud, spot, cpu, gpu].forEach(function (el) { if (el) el.addEventListener('change', update); });
})();
</script>"""


def _render_pairs(
    catalog: Mapping[str, Any],
    previous: Mapping[str, Any],
    cloud: str,
    spot: bool,
    automatic_cloud: str | None = None,
) -> list[str]:
    """The pair selects: a CPU package and a GPU package, priced on the chosen cloud.

    With the cloud menu's "Automatic" (`automatic_cloud`: the default cloud), a pair is priced
    there: the service places named sizes by credits, and a pair on the hub's default cloud.
    """
    pairs = list(catalog.get("pairs") or [])
    packages = catalog.get("packages") or {}
    if not pairs or not packages:
        return []
    offers = {str(p["id"]): _pair_offers(p) for p in pairs}
    if automatic_cloud is not None:
        for by_cloud in offers.values():
            if automatic_cloud in by_cloud:
                by_cloud[AUTOMATIC] = {
                    **by_cloud[automatic_cloud],
                    "cloudLabel": CLOUD_LABELS.get(automatic_cloud, automatic_cloud),
                }
    chosen = str(previous.get("size") or "")
    cpu_now, _, gpu_now = chosen.partition(".") if chosen in offers else ("", "", "none")
    cpu_options = '<option value="">a size above</option>' + "".join(
        f'<option value="{escape(str(p["id"]))}"{" selected" if p["id"] == cpu_now else ""}>'
        f"{escape(str(p.get('label') or p['id']))}</option>"
        for p in packages.get("cpu") or []
    )
    gpu_options = "".join(
        f'<option value="{escape(str(p["id"]))}"{" selected" if p["id"] == gpu_now else ""}>'
        f"{escape(str(p.get('label') or p['id']))}</option>"
        for p in packages.get("gpu") or []
    )
    now = (
        pair_text(
            offers[chosen].get(cloud),
            spot=spot,
            cloud_label=AUTOMATIC_LABEL if cloud == AUTOMATIC else CLOUD_LABELS.get(cloud, cloud),
        )
        if cpu_now
        else ""
    )
    return [
        f'<fieldset class="form-group ngsci-pairs" data-pairs="{escape(json.dumps(offers))}">',
        "<legend>Or combine a CPU package with a GPU package</legend>",
        '<label for="ngsci-cpu">CPU</label>',
        f'<select class="form-control" name="cpu" id="ngsci-cpu">{cpu_options}</select>',
        '<label for="ngsci-gpu">GPU</label>',
        f'<select class="form-control" name="gpu" id="ngsci-gpu">{gpu_options}</select>',
        f'<span class="ngsci-pair-price">{escape(now)}</span>',
        "</fieldset>",
    ]


def render_form(catalog: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> str:
    """The spawn form: sizes with their prices, a cloud select, a spot checkbox.

    `previous` is the last `user_options` of this server; its choices are preselected.
    """
    previous = previous or {}
    sizes = list(catalog.get("sizes") or [])
    prices = {str(size["id"]): _prices_by_cloud(size) for size in sizes}
    offered = {cloud for by_cloud in prices.values() for cloud in by_cloud}
    clouds = [c for c in catalog.get("clouds") or [] if c in offered]
    clouds += sorted(offered - set(clouds))
    if not clouds:
        return render_unavailable("No size is available on any cloud at the moment.")

    default_cloud = next((str(c) for c in (catalog.get("defaultCloud"),) if c in clouds), clouds[0])
    # where each size costs the organisation least after cloud credits, and why (hub-service)
    placements = catalog.get("placements") or {}
    spot_placements = catalog.get("spotPlacements")
    spot_placements = spot_placements if isinstance(spot_placements, Mapping) else None
    # several clouds to choose from, and the service says where it would place: "Automatic",
    # the default unless this server's last spawn named a cloud
    hub_clouds = [c for c in clouds if c in (catalog.get("clouds") or [])]
    automatic = len(hub_clouds) > 1 and bool(placements)
    cloud: str = next(
        (str(c) for c in (previous.get("cloud"),) if c in clouds),
        AUTOMATIC if automatic else default_cloud,
    )
    spot = previous.get("spot") is True
    fallback = previous.get("spotFallback") is True
    preemption = previous.get("onPreemption")
    preemption = preemption if preemption in ON_PREEMPTION else ""
    cloud_label = AUTOMATIC_LABEL if cloud == AUTOMATIC else CLOUD_LABELS.get(cloud, cloud)
    runways = _runway_by_choice(catalog)
    forbidden = _forbidden_sizes(catalog)
    absents = {str(s["id"]): _absent_reasons(s) for s in sizes}
    if automatic:
        for size_id, by_cloud in prices.items():
            auto, why, lands = _automatic_choice(
                size_id, by_cloud, placements, spot_placements, default_cloud
            )
            if auto is None:
                absents[size_id][AUTOMATIC] = str(why)
                continue
            by_cloud[AUTOMATIC] = auto
            runway = runways.get(size_id)
            if runway:
                runway[AUTOMATIC] = {
                    kind: runway[landed][kind]
                    for kind, landed in lands.items()
                    if runway.get(landed, {}).get(kind)
                }
    choosable = [
        str(s["id"])
        for s in sizes
        if cloud in prices[str(s["id"])] and str(s["id"]) not in forbidden
    ]
    checked = previous.get("size") if previous.get("size") in choosable else None
    checked = checked or (choosable[0] if choosable else None)

    rows = []
    for size in sizes:
        size_id = str(size["id"])
        here = prices[size_id].get(cloud)
        attrs = " checked" if size_id == checked else ""
        attrs += "" if here and size_id not in forbidden else " disabled"
        runway = runways.get(size_id, {})
        absent = absents[size_id]
        line = runway.get(cloud, {})
        line_text = (spot and line.get("spot")) or line.get("onDemand") or ""
        price = (
            absent[cloud]
            if not here and cloud in absent
            else price_text(here, spot=spot, cloud_label=cloud_label)
        )
        placed = (
            '<span class="ngsci-runway ngsci-placement"'
            f"{' hidden' if cloud == AUTOMATIC else ''}>Least cost for your organisation: "
            f"{escape(str(placements[size_id]['reason']))}</span>"
            if size_id in placements
            else ""
        )
        rows.append(
            f'<label class="ngsci-size" for="ngsci-size-{escape(size_id)}"'
            f' data-prices="{escape(json.dumps(prices[size_id]))}"'
            f' data-runway="{escape(json.dumps(runway))}"'
            f' data-absent="{escape(json.dumps(absent))}"'
            f"{' data-forbidden' if size_id in forbidden else ''}>"
            f'<input type="radio" name="size" id="ngsci-size-{escape(size_id)}"'
            f' value="{escape(size_id)}"{attrs}> '
            f"<strong>{escape(str(size.get('label') or size_id))}</strong> "
            f'<span class="ngsci-size-spec">{escape(_describe_size(size))}</span>'
            f'<span class="ngsci-price">'
            f"{escape(price)}</span>"
            f'<span class="ngsci-runway">{escape(line_text)}</span>{placed}'
            "</label>"
        )

    menu: list[str] = ([AUTOMATIC] if automatic else []) + [str(c) for c in clouds]
    cloud_options = "".join(
        f'<option value="{escape(c)}"{" selected" if c == cloud else ""}>'
        f"{escape(AUTOMATIC_LABEL if c == AUTOMATIC else CLOUD_LABELS.get(c, c))}</option>"
        for c in menu
    )
    as_of = escape(str(catalog.get("asOf", "")))
    currency = escape(str(catalog.get("currency", "USD")))
    return "\n".join(
        [
            _STYLE,
            '<div id="ngsci-options" class="ngsci-options">',
            '<div class="form-group">',
            '<label for="ngsci-cloud">Cloud</label>',
            f'<select class="form-control" name="cloud" id="ngsci-cloud">{cloud_options}</select>',
            "</div>",
            '<fieldset class="form-group">',
            "<legend>Size</legend>",
            *rows,
            "</fieldset>",
            *_render_pairs(catalog, previous, cloud, spot, default_cloud if automatic else None),
            '<div class="form-check">',
            '<input class="form-check-input" type="checkbox" name="spot" id="ngsci-spot"'
            f' value="on"{" checked" if spot else ""}>',
            '<label class="form-check-label" for="ngsci-spot">'
            "Spot instance: cheaper, but the cloud may take it back at short notice</label>",
            "</div>",
            '<div class="form-check">',
            '<input class="form-check-input" type="checkbox" name="spotFallback"'
            f' id="ngsci-spot-fallback" value="on"{" checked" if fallback else ""}>',
            '<label class="form-check-label" for="ngsci-spot-fallback">'
            "If the cloud has no spot capacity, start on demand instead (billed at the on-demand"
            " price)</label>",
            "</div>",
            '<div class="form-group">',
            '<label for="ngsci-on-preemption">If the cloud takes the spot machine back</label>',
            '<select class="form-control" name="onPreemption" id="ngsci-on-preemption">',
            *(
                f'<option value="{value}"{" selected" if value == preemption else ""}>'
                f"{escape(text)}</option>"
                for value, text in (
                    ("", "my default (ngsci preemption), else the admin's"),
                    ("on-demand", "start it again on demand (billed at the on-demand price)"),
                    ("spot", "start it again on spot"),
                    ("stop", "leave it stopped"),
                )
            ),
            "</select>",
            "</div>",
            f'<p class="ngsci-note">Prices are list prices in {currency} per hour as of {as_of};'
            " your plan may bill them differently.</p>",
            "</div>",
            _SCRIPT,
            _PAIR_SCRIPT if catalog.get("pairs") else "",
        ]
    )


def render_unavailable(reason: str) -> str:
    """What the form says when there is nothing to choose from, and why."""
    return (
        '<div id="ngsci-options" class="ngsci-options alert alert-warning" role="alert">'
        f"<strong>Machine sizes cannot be shown right now.</strong> {escape(reason)} "
        "Try again in a minute; if this persists, tell your hub administrator."
        "</div>"
    )
