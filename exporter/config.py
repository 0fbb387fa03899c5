"""Configuration: defaults < YAML file < ``CRYPTOLIQ_*`` environment < command-line flags.

Every setting is one row of ``SETTINGS``: its YAML key, from which its flag and variable are
spelt, its parser and its target, the field its value goes to (of ``Config``, of the heatmap
model's ``HeatmapParams``, or of the per-exchange configs). Everything is validated here, once,
into frozen dataclasses; a bad value raises ``ConfigError`` naming the key as the user wrote it,
the value and what is allowed, and the CLI turns that into one line on stderr and exit status 2.
A former spelling that still works is reported in ``Config.warnings``, saying what to write now.

An unknown ``CRYPTOLIQ_*`` variable is an error too, except the ones Kubernetes injects for a
Service whose name starts with ``cryptoliq`` (``CRYPTOLIQ_SERVICE_HOST``, ``CRYPTOLIQ_PORT=tcp://…``
and the rest of its service links): those are skipped when name and value both have that shape.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

import yaml

from exporter.core import DEFAULT_EXEMPLAR_MIN_USD
from exporter.heatmap.params import LEVERAGE_MODELS, SIDE_ATTRIBUTIONS, HeatmapParams
from exporter.heatmap.selection import TOP_PREFIX, HeatmapCoins
from exporter.shard import WHOLE, Shard, parse_shard
from exporter.venues import ALL, DEFAULT_VENUES, VENUES, Venue, is_venue

if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_COINS: Final = ("BTC", "ETH", "SOL")
# Bare coins: each venue reads a coin as its own main perpetual (VenueAdapter.coin_symbol).
DEFAULT_SYMBOLS: Final = DEFAULT_COINS
# A heatmap is ~790 series per coin (500 to 1,310 by where its price sits in its octave, ~1,920
# at most; docs/scaling.md), a market's other series up to 63: top:10 keeps at most
# ceil(1.5 * 10) = 15 heatmaps (hysteresis), <= ~29k heatmap series, also under `symbols: all`.
DEFAULT_HEATMAP_COINS: Final = HeatmapCoins(top=10)
DEFAULT_PORT: Final = 9877
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
ALL_SYMBOLS: Final = "all"
MIN_POLL_SECONDS: Final = 1.0
# The venues' long/short statistics come in 5-minute periods: a poll per period.
DEFAULT_POSITIONING_SECONDS: Final = 300.0
MIN_POSITIONING_SECONDS: Final = 60.0
ENV_PREFIX: Final = "CRYPTOLIQ_"
CONFIG_ENV: Final = ENV_PREFIX + "CONFIG"  # the YAML file's path, like --config
ALL_INTERFACES: Final = "0.0.0.0"  # noqa: S104 - an exporter is scraped from other hosts

Transport = Literal["ccxt", "native"]
TRANSPORTS: Final[tuple[Transport, ...]] = get_args(Transport)

_COIN = re.compile(r"^[A-Z0-9]{1,20}$")
_UNIFIED = re.compile(r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,10}:[A-Z0-9]{1,10}$")
_URL = re.compile(r"^(https?|wss?)://[^\s/]+(/\S*)?$")

# Kubernetes service links (docker-link style variables, on by default: enableServiceLinks) of a
# Service named cryptoliq or cryptoliq-*, e.g. CRYPTOLIQ_PORT_9877_TCP_ADDR=10.0.0.1. Names are
# the Service's, upper-cased, dashes as underscores; values are an IP, a port, a protocol or
# proto://ip:port (IPv6 in brackets).
_SERVICE = r"CRYPTOLIQ(?:_[A-Z0-9_]+?)?"
_LINK_PORT = rf"{_SERVICE}_PORT_(?P<port>[0-9]+)_(?P<proto>TCP|UDP|SCTP)"
_LINK_URL = re.compile(
    r"(?P<proto>tcp|udp|sctp)://(?:\[(?P<ip6>[^\]]+)\]|(?P<ip4>[^:\[\]]+)):(?P<port>[0-9]+)"
)
_SERVICE_LINKS: Final = tuple(
    (re.compile(pattern), kind)
    for pattern, kind in (
        (rf"{_SERVICE}_SERVICE_HOST", "ip"),
        (rf"{_SERVICE}_SERVICE_PORT(?:_[A-Z0-9_]+)?", "port"),  # _<PORT NAME> for named ports
        (rf"{_SERVICE}_PORT", "url"),
        (_LINK_PORT, "url"),
        (rf"{_LINK_PORT}_PROTO", "proto"),
        (rf"{_LINK_PORT}_PORT", "port"),
        (rf"{_LINK_PORT}_ADDR", "ip"),
    )
)


# What an error shows instead of a value that may be a secret (a web-config entry under a
# mistyped key, an unknown variable that is a mounted Secret).
HIDDEN: Final = "(hidden)"


def shape(value: object) -> str:
    """What an error shows of a value of the wrong shape: its type, never its content."""
    return f"(a {type(value).__name__})"


class ConfigError(ValueError):
    """A setting that cannot be used: ``key = value: allowed``, one line."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"{key} = {value!r}: {allowed}")
        self.key = key


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    """One venue. ``symbols`` are coins or ccxt unified symbols; ``all_symbols`` means every
    market the venue's module covers (``VenueAdapter.every_market``)."""

    name: Venue
    enabled: bool = True
    all_symbols: bool = False
    symbols: tuple[str, ...] = ()
    rest_url: str | None = None  # root URL, e.g. https://fapi.binance.com (testnet, proxy, fake)
    ws_url: str | None = None  # root URL, e.g. wss://fstream.binance.com
    poll_interval_seconds: float = 15.0
    # Long/short ratios (venues that publish them): seconds between polls, 0 turns them off.
    positioning_interval_seconds: float = DEFAULT_POSITIONING_SECONDS
    # What carries the liquidation stream: ccxt.pro, or the exporter's own WebSocket client
    # ("native"). REST (open interest, mark price, history) is ccxt's either way.
    transport: Transport = "ccxt"


@dataclass(frozen=True, slots=True)
class Config:
    listen_address: str = ALL_INTERFACES
    port: int = DEFAULT_PORT
    log_level: str = "info"
    exchanges: tuple[ExchangeConfig, ...] = field(default_factory=tuple)
    demo: bool = False
    demo_speed: float = 10.0  # a demo should show an hour of market in minutes
    state_dir: str | None = None  # where snapshots of windows and heatmap live; None: off
    snapshot_interval_seconds: float = 60.0
    web_config_file: str | None = None  # TLS and basic auth (Prometheus exporter-toolkit format)
    heatmap: HeatmapParams = field(default_factory=HeatmapParams)
    heatmap_coins: HeatmapCoins = DEFAULT_HEATMAP_COINS  # which coins get a heatmap
    backfill_hours: float = 72.0  # OKX keeps about 3 days of 5-minute open interest
    # Liquidations of at least this many USD are exemplars of the size histogram (the live feed).
    exemplar_min_usd: float = DEFAULT_EXEMPLAR_MIN_USD
    # The markets this replica serves when several split them (exporter.shard).
    shard: Shard = WHOLE
    # Kubernetes service-link variables that were skipped, for the CLI to log once logging is set.
    ignored_env: tuple[str, ...] = ()
    # Former spellings that still work, each saying what to write now; the CLI logs them.
    warnings: tuple[str, ...] = ()

    def enabled_exchanges(self) -> tuple[ExchangeConfig, ...]:
        return tuple(e for e in self.exchanges if e.enabled)

    def exchange(self, name: str) -> ExchangeConfig:
        return next(e for e in self.exchanges if e.name == name)


# --- value parsers: each takes (key, raw value) and returns the typed value or raises ---------


def _parse_bool(key: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in {
        "1",
        "true",
        "yes",
        "on",
        "0",
        "false",
        "no",
        "off",
    }:
        return raw.lower() in {"1", "true", "yes", "on"}
    raise ConfigError(key, raw, "expected true or false")


def _parse_number(key: str, raw: object, *, minimum: float, maximum: float, unit: str) -> float:
    try:
        value = (
            float(raw) if isinstance(raw, int | float | str) and not isinstance(raw, bool) else None
        )
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or not minimum <= value <= maximum:
        raise ConfigError(key, raw, f"expected a number of {unit} from {minimum:g} to {maximum:g}")
    return value


def _parse_port(key: str, raw: object) -> int:
    allowed = "expected a port number from 1 to 65535"
    try:
        value = _parse_number(key, raw, minimum=1, maximum=65535, unit="port")
    except ConfigError:
        raise ConfigError(key, raw, allowed) from None
    if value != int(value):
        raise ConfigError(key, raw, allowed)
    return int(value)


def _parse_choice(key: str, raw: object, choices: tuple[str, ...]) -> str:
    if isinstance(raw, str) and raw.lower() in choices:
        return raw.lower()
    raise ConfigError(key, raw, f"expected one of {', '.join(choices)}")


def _parse_shard(key: str, raw: object) -> Shard:
    try:
        return parse_shard(str(raw)) if isinstance(raw, str | int) else parse_shard("")
    except ValueError as exc:
        raise ConfigError(key, raw, str(exc)) from None


def _parse_text(key: str, raw: object) -> str:
    if isinstance(raw, str) and raw.strip():
        return raw.strip()
    raise ConfigError(key, raw, "expected a non-empty string")


def _parse_url(key: str, raw: object) -> str:
    if isinstance(raw, str) and _URL.match(raw.strip()):
        return raw.strip().rstrip("/")
    raise ConfigError(key, raw, "expected a root URL like https://host:port or wss://host:port")


def parse_listen_address(key: str, raw: object) -> tuple[str, int]:
    """``[HOST]:PORT`` as node_exporter's ``--web.listen-address`` takes it: ``:9877`` (no host:
    every IPv4 interface, as by default), ``0.0.0.0:9877``, ``[::1]:9877``. Returns (listen
    address, port)."""
    allowed = "expected [HOST]:PORT, e.g. :9877, 127.0.0.1:9877 or [::1]:9877"
    text = raw.strip() if isinstance(raw, str) else ""
    if text.startswith("["):
        host, separator, port = text[1:].partition("]:")
        valid = bool(separator and host) and "[" not in host and "]" not in host
    else:
        host, separator, port = text.rpartition(":")
        valid = bool(separator) and ":" not in host  # an unbracketed IPv6 host is ambiguous
    if not valid or any(c.isspace() for c in host):
        raise ConfigError(key, raw, allowed)
    try:
        number = _parse_port(key, port)
    except ConfigError:
        raise ConfigError(key, raw, allowed) from None
    return host or ALL_INTERFACES, number


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and 1 <= int(text) <= 65535


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _link_value_fits(kind: str, value: str, port: str | None, proto: str | None) -> bool:
    """Whether ``value`` is what Kubernetes puts in a service link of this ``kind``; ``port``
    and ``proto`` are the ones in the variable's name, if it has them."""
    if kind == "ip":
        return _is_ip(value)
    if kind == "port":
        return _is_port(value) and (port is None or value == port)
    if kind == "proto":
        return proto is not None and value == proto.lower()
    url = _LINK_URL.fullmatch(value)
    return (
        url is not None
        and _is_ip(url["ip6"] or url["ip4"])
        and _is_port(url["port"])
        and (port is None or url["port"] == port)
        and (proto is None or url["proto"] == proto.lower())
    )


def is_service_link(name: str, value: str) -> bool:
    """A variable Kubernetes injects for a Service named ``cryptoliq`` or ``cryptoliq-*``:
    both the name and the value must have a service link's shape, so ``CRYPTOLIQ_PORT=9100``
    is still the port setting and ``CRYPTOLIQ_PORT=abc`` still an error."""
    for pattern, kind in _SERVICE_LINKS:
        found = pattern.fullmatch(name)
        if found is not None:
            groups = found.groupdict()
            if _link_value_fits(kind, value, groups.get("port"), groups.get("proto")):
                return True
    return False


def _split_list(raw: object) -> list[object] | None:
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if isinstance(raw, list | tuple):
        return list(raw)
    return None


def normalise_symbol(spec: str) -> str | None:
    """A coin (``btc`` -> ``BTC``, read by each venue as its main perpetual: ``BTC/USDT:USDT``
    on Binance, ``BTC/USD:BTC`` on Binance COIN-M) or a unified symbol, as it is."""
    text = spec.strip().upper()
    if _COIN.match(text):
        return text
    if _UNIFIED.match(text):
        return text
    return None


def _parse_symbols(key: str, raw: object) -> tuple[bool, tuple[str, ...]]:
    """Returns (all_symbols, symbols)."""
    allowed = f"expected {ALL_SYMBOLS!r} or a list of coins (BTC) or ccxt symbols (BTC/USDT:USDT)"
    if isinstance(raw, str) and raw.strip().lower() == ALL_SYMBOLS:
        return True, ()
    items = _split_list(raw)
    if not items:
        raise ConfigError(key, raw, allowed)
    symbols: list[str] = []
    for item in items:
        symbol = normalise_symbol(item) if isinstance(item, str) else None
        if symbol is None:
            raise ConfigError(key, item, allowed)
        if symbol not in symbols:
            symbols.append(symbol)
    return False, tuple(symbols)


def _parse_heatmap_coins(key: str, raw: object) -> HeatmapCoins:
    """``all``, ``top:N`` (N >= 1) or a list of coins (``BTC,ETH``: bare, like ``symbols``)."""
    allowed = (
        f"expected {ALL_SYMBOLS!r}, {TOP_PREFIX}N with N >= 1 (the N coins of the largest open "
        "interest) or a list of coins (BTC,ETH)"
    )
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text == ALL_SYMBOLS:
            return HeatmapCoins()
        if text.startswith(TOP_PREFIX):
            count = text.removeprefix(TOP_PREFIX).strip()
            if not (count.isascii() and count.isdigit() and int(count) >= 1):
                raise ConfigError(key, raw, allowed)
            return HeatmapCoins(top=int(count))
    items = _split_list(raw)
    if not items:
        raise ConfigError(key, raw, allowed)
    coins: list[str] = []
    for item in items:
        coin = item.strip().upper() if isinstance(item, str) else ""
        if not _COIN.match(coin):
            raise ConfigError(key, item, allowed)
        if coin not in coins:
            coins.append(coin)
    return HeatmapCoins(coins=tuple(coins))


def _parse_pairs(key: str, raw: object, *, numeric_keys: bool) -> dict[Any, float]:
    """A YAML mapping or ``k:v,k:v`` text; keys numbers (leverages) or names (coins)."""
    example = "5:0.15,10:0.3,25:0.25,50:0.2,100:0.1" if numeric_keys else "BTC:0.004,ETH:0.005"
    allowed = f"expected a mapping or pairs like {example}"
    items: list[tuple[object, object]]
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, str):
        parts = [p.split(":", 1) for p in raw.split(",") if p.strip()]
        if any(len(p) != 2 for p in parts):
            raise ConfigError(key, raw, allowed)
        items = [(k.strip(), v.strip()) for k, v in parts]
    else:
        raise ConfigError(key, raw, allowed)
    result: dict[Any, float] = {}
    for name, value in items:
        try:
            number = float(str(value))
            result[float(str(name)) if numeric_keys else str(name).upper()] = number
        except (TypeError, ValueError):
            raise ConfigError(key, raw, allowed) from None
    if not result:
        raise ConfigError(key, raw, allowed)
    return result


def _parse_venues(key: str, raw: object) -> tuple[Venue, ...]:
    """A list of venues, or ``all`` (every venue the exporter knows)."""
    if isinstance(raw, str) and raw.strip().lower() == ALL:
        return VENUES
    items = _split_list(raw)
    allowed = f"expected {ALL!r} or a list of {', '.join(VENUES)}"
    if not items:
        raise ConfigError(key, raw, allowed)
    venues: list[Venue] = []
    for item in items:
        name = item.strip().lower() if isinstance(item, str) else item
        if not is_venue(name):
            raise ConfigError(key, item, allowed)
        if name not in venues:
            venues.append(name)
    return tuple(venues)


def _parse_transport(key: str, raw: object) -> Transport:
    text = raw.strip().lower() if isinstance(raw, str) else None
    for transport in TRANSPORTS:
        if text == transport:
            return transport
    raise ConfigError(key, raw, f"expected one of {', '.join(TRANSPORTS)}")


def _parse_exchange_settings(key: str, raw: object) -> Mapping[Venue, object]:
    """The YAML ``exchanges`` mapping, venue -> its settings (read by ``_build_exchanges``)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(key, raw, "expected a mapping of exchange name to settings")
    settings: dict[Venue, object] = {}
    for name, value in raw.items():
        if not is_venue(name):
            allowed = f"unknown exchange; allowed: {', '.join(VENUES)}"
            raise ConfigError(f"{key}.{name}", value, allowed)
        settings[name] = value
    return settings


# --- the settings table ------------------------------------------------------------------------

# Where a setting's value goes: a field of Config, of HeatmapParams (Config.heatmap), or an
# argument of _build_exchanges, which makes the per-exchange configs (Config.exchanges).
Part = Literal["config", "heatmap", "exchanges"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: YAML key (the flag and the variable are spelt from it), parser, target
    ``(part, field)`` and help text."""

    key: str
    parse: Callable[[str, object], Any]
    target: tuple[Part, str]
    help: str
    # "switch": a flag without an argument; "none": no flag and no variable, YAML only.
    flag_kind: Literal["value", "switch", "none"] = "value"
    aliases: tuple[str, ...] = ()  # other flags for it, e.g. node_exporter's spelling
    # A former key whose flag and variable still work, with a warning saying what to write now.
    formerly: str | None = None

    @property
    def flag(self) -> str:
        return _flag(self.key)

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper()

    @property
    def former_flag(self) -> str | None:
        return None if self.formerly is None else _flag(self.formerly)

    @property
    def former_env(self) -> str | None:
        return None if self.formerly is None else ENV_PREFIX + self.formerly.upper()

    @property
    def former_dest(self) -> str:
        """Where argparse puts the former flag's value (``key`` holds the flag's)."""
        return f"former_{self.key}"


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _heatmap(
    key: str, parse: Callable[[str, object], Any], help_text: str, *, param: str
) -> Setting:
    """A setting of the heatmap model: parsed, then checked by the model on its own, so that
    whatever the model rejects is reported under this setting's key."""

    def parse_and_check(source: str, raw: object) -> Any:
        value = parse(source, raw)
        try:
            HeatmapParams(**{param: value})
        except ValueError as exc:
            raise ConfigError(source, raw, str(exc)) from None
        return value

    return Setting(key, parse_and_check, ("heatmap", param), help_text)


SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        "listen_address",
        _parse_text,
        ("config", "listen_address"),
        "address to serve /metrics on (default 0.0.0.0)",
    ),
    Setting(
        "port",
        _parse_port,
        ("config", "port"),
        f"port to serve /metrics on (default {DEFAULT_PORT})",
    ),
    Setting(
        "log_level",
        lambda k, v: _parse_choice(k, v, LOG_LEVELS),
        ("config", "log_level"),
        "debug|info|warning|error",
    ),
    Setting(
        "enabled_exchanges",
        _parse_venues,
        ("exchanges", "enabled"),
        f"comma-separated exchanges to run, or 'all' (default {','.join(DEFAULT_VENUES)})",
        formerly="exchanges",
    ),
    Setting(
        "symbols",
        _parse_symbols,
        ("exchanges", "default_symbols"),
        "default symbols of every exchange: 'all' or comma-separated coins/ccxt symbols "
        f"(default {','.join(DEFAULT_COINS)})",
    ),
    Setting(
        "exchanges",
        _parse_exchange_settings,
        ("exchanges", "settings"),
        "per-exchange settings, a mapping of exchange name to settings (YAML only)",
        flag_kind="none",
    ),
    Setting(
        "backfill_hours",
        lambda k, v: _parse_number(k, v, minimum=0, maximum=30 * 24, unit="hours"),
        ("config", "backfill_hours"),
        "open-interest history fetched per market at start-up and replayed into the heatmap; "
        "0 disables (default 72)",
    ),
    Setting(
        "exemplar_min_usd",
        lambda k, v: _parse_number(k, v, minimum=0, maximum=1e9, unit="USD"),
        ("config", "exemplar_min_usd"),
        "liquidations of at least this many USD are exemplars of "
        "cryptoliq_liquidation_size_usd_bucket (OpenMetrics scrapes; the live liquidations "
        f"panel) (default {DEFAULT_EXEMPLAR_MIN_USD:g})",
    ),
    Setting(
        "state_dir",
        _parse_text,
        ("config", "state_dir"),
        "directory for snapshots of the rolling windows and heatmap, restored at start-up "
        "(default: none, state is not kept across restarts)",
    ),
    Setting(
        "snapshot_interval_seconds",
        lambda k, v: _parse_number(k, v, minimum=1, maximum=3600, unit="seconds"),
        ("config", "snapshot_interval_seconds"),
        "seconds between snapshots; one more is written on SIGTERM/SIGINT (default 60)",
    ),
    Setting(
        "web_config_file",
        _parse_text,
        ("config", "web_config_file"),
        "web-config file for TLS and basic auth, in the Prometheus exporter-toolkit format",
        aliases=("--web.config.file",),
    ),
    Setting(
        "demo",
        _parse_bool,
        ("config", "demo"),
        "run against the built-in simulated exchanges",
        flag_kind="switch",
    ),
    Setting(
        "demo_speed",
        lambda k, v: _parse_number(k, v, minimum=0.1, maximum=3600, unit="x real time"),
        ("config", "demo_speed"),
        "simulated seconds per real second in --demo (default 10)",
        aliases=("--speed",),
    ),
    Setting(
        "shard",
        _parse_shard,
        ("config", "shard"),
        "I/N: serve only the markets of shard I of N replicas (a stable hash of venue and "
        "symbol, docs/scaling.md); every replica runs with the same configuration otherwise "
        "(default 1/1: every market)",
    ),
    Setting(
        "heatmap_coins",
        _parse_heatmap_coins,
        ("config", "heatmap_coins"),
        f"coins that get a heatmap: '{TOP_PREFIX}N' (the N of the largest open interest, "
        "re-ranked as it changes), comma-separated coins or 'all'; every coin keeps its "
        f"totals, windows and open interest (default {DEFAULT_HEATMAP_COINS})",
    ),
    _heatmap(
        "heatmap_leverage",
        lambda k, v: _parse_choice(k, v, LEVERAGE_MODELS),
        "lognormal: new positions' leverage follows a log-normal density (default); mix: the "
        "five-point heatmap_leverage_mix",
        param="leverage_model",
    ),
    _heatmap(
        "heatmap_leverage_median",
        lambda k, v: _parse_number(k, v, minimum=1, maximum=1000, unit="x leverage"),
        "median leverage of the log-normal density (default 33)",
        param="leverage_median",
    ),
    _heatmap(
        "heatmap_leverage_sigma",
        lambda k, v: _parse_number(k, v, minimum=0.05, maximum=3, unit="log-leverage"),
        "spread of the log-normal density: standard deviation of ln(leverage) (default 1.2)",
        param="leverage_sigma",
    ),
    _heatmap(
        "heatmap_leverage_min",
        lambda k, v: _parse_number(k, v, minimum=1, maximum=1000, unit="x leverage"),
        "lowest leverage of the log-normal density (default 2)",
        param="leverage_min",
    ),
    _heatmap(
        "heatmap_leverage_max",
        lambda k, v: _parse_number(k, v, minimum=1, maximum=1000, unit="x leverage"),
        "highest leverage of the log-normal density (default 125; per coin at most "
        "1 / (2 x its maintenance margin rate))",
        param="leverage_max",
    ),
    _heatmap(
        "heatmap_leverage_mix",
        lambda k, v: _parse_pairs(k, v, numeric_keys=True),
        "leverage:weight pairs new positions are spread over, weights summing to 1 (default "
        "5:0.15,10:0.3,25:0.25,50:0.2,100:0.1)",
        param="leverage_mix",
    ),
    _heatmap(
        "heatmap_mmr",
        lambda k, v: _parse_pairs(k, v, numeric_keys=False),
        "coin:maintenance-margin-rate pairs (default BTC:0.004,ETH:0.005,SOL:0.005; others 0.01)",
        param="mmr",
    ),
    _heatmap(
        "heatmap_side_attribution",
        lambda k, v: _parse_choice(k, v, SIDE_ATTRIBUTIONS),
        "both: new open interest adds longs and shorts alike (default); trend: only the side "
        "the price moved towards",
        param="side_attribution",
    ),
    _heatmap(
        "heatmap_bin_fraction",
        lambda k, v: _parse_number(k, v, minimum=0.0005, maximum=0.02, unit="price fraction"),
        "target price-bin width as a fraction of price (default 0.0025)",
        param="bin_fraction",
    ),
    _heatmap(
        "heatmap_range_fraction",
        lambda k, v: _parse_number(k, v, minimum=0.01, maximum=0.5, unit="price fraction"),
        "heatmap grid: this fraction below and above the ~4.4 %% price cell of the mark price "
        "(default 0.15)",
        param="range_fraction",
    ),
    _heatmap(
        "heatmap_half_life_hours",
        lambda k, v: _parse_number(k, v, minimum=0.1, maximum=24 * 365, unit="hours"),
        "turnover: estimated positions close, and as many reopen at the price, with this "
        "half-life (default 12)",
        param="half_life_hours",
    ),
    _heatmap(
        "heatmap_stale_after_seconds",
        lambda k, v: _parse_number(k, v, minimum=60, maximum=86_400, unit="seconds"),
        "open interest unchanged for longer is stale upstream data: it opens and closes no "
        "positions, nor does the step when it moves again (default 900)",
        param="stale_after_seconds",
    ),
)
_SETTINGS_BY_KEY: Final = {s.key: s for s in SETTINGS}

EXCHANGE_KEYS: Final = (
    "enabled",  # former: enabled_exchanges says which exchanges run (see _build_exchanges)
    "symbols",
    "rest_url",
    "ws_url",
    "poll_interval_seconds",
    "positioning_interval_seconds",
    "transport",
)


def _parse_exchange(
    name: Venue, raw: object, default_symbols: tuple[bool, tuple[str, ...]], *, enabled: bool
) -> ExchangeConfig:
    prefix = f"exchanges.{name}"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(prefix, raw, f"expected a mapping with keys {', '.join(EXCHANGE_KEYS)}")
    for key in raw:
        if key not in EXCHANGE_KEYS:
            raise ConfigError(
                f"{prefix}.{key}", raw[key], f"unknown key; allowed: {', '.join(EXCHANGE_KEYS)}"
            )
    all_symbols, symbols = (
        _parse_symbols(f"{prefix}.symbols", raw["symbols"]) if "symbols" in raw else default_symbols
    )
    return ExchangeConfig(
        name=name,
        enabled=enabled,
        all_symbols=all_symbols,
        symbols=symbols,
        rest_url=_parse_url(f"{prefix}.rest_url", raw["rest_url"]) if "rest_url" in raw else None,
        ws_url=_parse_url(f"{prefix}.ws_url", raw["ws_url"]) if "ws_url" in raw else None,
        poll_interval_seconds=_parse_number(
            f"{prefix}.poll_interval_seconds",
            raw.get("poll_interval_seconds", 15.0),
            minimum=MIN_POLL_SECONDS,
            maximum=3600,
            unit="seconds",
        ),
        positioning_interval_seconds=_parse_positioning_interval(
            f"{prefix}.positioning_interval_seconds",
            raw.get("positioning_interval_seconds", DEFAULT_POSITIONING_SECONDS),
        ),
        transport=_parse_transport(f"{prefix}.transport", raw.get("transport", "ccxt")),
    )


def _parse_positioning_interval(key: str, raw: object) -> float:
    """0 (off) or a number of seconds from MIN_POSITIONING_SECONDS to a day."""
    allowed = f"expected 0 (off) or a number of seconds from {MIN_POSITIONING_SECONDS:g} to 86400"
    try:
        value = _parse_number(key, raw, minimum=0, maximum=86_400, unit="seconds")
    except ConfigError:
        raise ConfigError(key, raw, allowed) from None
    if 0 < value < MIN_POSITIONING_SECONDS:
        raise ConfigError(key, raw, allowed)
    return value


def read_yaml(path: Path) -> dict[str, object]:
    """The YAML file's top-level mapping; a missing or unparsable file is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("--config", str(path), f"cannot read the file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError("--config", str(path), f"not valid YAML{where}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("--config", str(path), "expected a YAML mapping at the top level")
    return data


def _without_service_links(env: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """``env`` without Kubernetes service links, and the names of those left out."""
    links = sorted(
        name
        for name, value in env.items()
        if name.startswith(ENV_PREFIX) and is_service_link(name, value)
    )
    return {k: v for k, v in env.items() if k not in links}, tuple(links)


def _listen_flags(flags: Mapping[str, object]) -> Mapping[str, object]:
    """``--web.listen-address`` (node_exporter's spelling) as ``--listen-address`` and
    ``--port``; argparse collects it as a list so that a second one is an error, not a silent
    override."""
    key = "--web.listen-address"
    addresses = flags.get("web_listen_address")
    if addresses is None:
        return flags
    if not isinstance(addresses, list) or len(addresses) != 1:
        raise ConfigError(key, addresses, "expected one address; this exporter listens on one")
    for other in ("listen_address", "port"):
        if flags.get(other) is not None:
            raise ConfigError(
                key, addresses[0], f"give it or {_SETTINGS_BY_KEY[other].flag}, not both"
            )
    host, port = parse_listen_address(key, addresses[0])
    return {**flags, "listen_address": host, "port": port, "web_listen_address": None}


def _reject_unknown(yaml_values: Mapping[str, object], env: Mapping[str, str]) -> None:
    """A typo must fail loudly, not silently fall back to a default."""
    for key in yaml_values:
        if key not in _SETTINGS_BY_KEY:
            allowed = ", ".join(_SETTINGS_BY_KEY)
            raise ConfigError(str(key), yaml_values[key], f"unknown key; allowed: {allowed}")
    known_env = {s.env for s in SETTINGS if s.flag_kind != "none"} | {CONFIG_ENV}
    known_env |= {s.former_env for s in SETTINGS if s.former_env is not None}
    for name in env:
        if name.startswith(ENV_PREFIX) and name not in known_env:
            allowed = ", ".join(sorted(known_env))
            raise ConfigError(name, HIDDEN, f"unknown variable; allowed: {allowed}")


def _resolve(
    setting: Setting,
    yaml_values: Mapping[str, object],
    env: Mapping[str, str],
    flags: Mapping[str, object],
    warnings: list[str],
) -> tuple[object, str] | None:
    """The winning (raw value, key as its source spells it), or None when nobody set it."""
    if setting.flag_kind != "none":
        former_flag = flags.get(setting.former_dest)
        from_flags = _current_or_former(
            (flags.get(setting.key), setting.flag), (former_flag, setting.former_flag), warnings
        )
        if from_flags is not None:
            return from_flags
        former_env = env.get(setting.former_env) if setting.former_env is not None else None
        from_env = _current_or_former(
            (env.get(setting.env), setting.env), (former_env, setting.former_env), warnings
        )
        if from_env is not None:
            return from_env
    if setting.key in yaml_values:
        return yaml_values[setting.key], setting.key
    return None


def _current_or_former(
    current: tuple[object, str], former: tuple[object, str | None], warnings: list[str]
) -> tuple[object, str] | None:
    """One source's (value, name) of a setting: under its name, or under its former name with
    a warning saying what to write now; both is an error."""
    (value, name), (former_value, former_name) = current, former
    if former_value is None or former_name is None:
        return None if value is None else (value, name)
    if value is not None:
        raise ConfigError(former_name, former_value, f"give it or {name}, not both")
    spelling = f"{name}={former_value}" if name.startswith(ENV_PREFIX) else f"{name} {former_value}"
    warnings.append(f"{former_name} is the former name of {name}: write {spelling}")
    return former_value, former_name


def _build_exchanges(
    warnings: list[str],
    *,
    settings: Mapping[Venue, object] | None = None,
    default_symbols: tuple[bool, tuple[str, ...]] = (False, DEFAULT_SYMBOLS),
    enabled: tuple[Venue, ...] | None = None,
) -> tuple[ExchangeConfig, ...]:
    """Every venue's config, enabled or not. ``enabled`` (``enabled_exchanges``) says which
    run; without it, the former per-exchange ``enabled: false`` still works, with a warning."""
    settings = settings or {}
    former = {
        name: _parse_bool(f"exchanges.{name}.enabled", raw["enabled"])
        for name, raw in settings.items()
        if isinstance(raw, Mapping) and "enabled" in raw
    }
    if former:
        keys = ", ".join(f"exchanges.{name}.enabled" for name in former)
        if enabled is None:
            enabled = tuple(v for v in VENUES if former.get(v, v in DEFAULT_VENUES))
            warnings.append(f"{keys}: deprecated; write enabled_exchanges: [{', '.join(enabled)}]")
        else:
            warnings.append(f"{keys}: ignored, enabled_exchanges says which exchanges run")
    if enabled is None:
        enabled = DEFAULT_VENUES
    if not enabled:
        raise ConfigError(
            "exchanges", "(none enabled)", f"enable at least one of {', '.join(VENUES)}"
        )
    return tuple(
        _parse_exchange(name, settings.get(name), default_symbols, enabled=name in enabled)
        for name in VENUES
    )


def _shard_heatmap_coins(config: dict[str, Any], source: str) -> None:
    """Replicas must agree on the heatmap coins: ranking by open interest (top:N) sees only a
    replica's own markets, so sharded replicas default to the listed coins and refuse top:N."""
    shard: Shard = config.get("shard", WHOLE)
    if shard.whole:
        return
    coins: HeatmapCoins | None = config.get("heatmap_coins")
    if coins is None:
        config["heatmap_coins"] = HeatmapCoins(coins=DEFAULT_COINS)
    elif coins.top is not None:
        raise ConfigError(
            source,
            str(coins),
            f"with shard {shard} each replica ranks coins by its own markets' open interest "
            "and the replicas' heatmaps would not add up; list the coins (BTC,ETH,SOL) or "
            "use 'all'",
        )


def build_config(
    yaml_values: Mapping[str, object],
    env: Mapping[str, str],
    flags: Mapping[str, object],
) -> Config:
    """Layer the three sources and validate; keys are named as their source spells them."""
    env, ignored_env = _without_service_links(env)
    flags = _listen_flags(flags)
    _reject_unknown(yaml_values, env)
    parts: dict[Part, dict[str, Any]] = {"config": {}, "heatmap": {}, "exchanges": {}}
    warnings: list[str] = []
    sources: dict[str, str] = {}  # setting key -> how the source that set it spells it
    for setting in SETTINGS:
        resolved = _resolve(setting, yaml_values, env, flags, warnings)
        if resolved is not None:
            raw, source = resolved
            part, name = setting.target
            parts[part][name] = setting.parse(source, raw)
            sources[setting.key] = source
    if parts["config"].get("demo") and "enabled" not in parts["exchanges"]:
        parts["exchanges"]["enabled"] = VENUES  # a demo shows every venue unless told otherwise
    exchanges = _build_exchanges(warnings, **parts["exchanges"])
    _shard_heatmap_coins(parts["config"], sources.get("heatmap_coins", "heatmap_coins"))
    return Config(
        exchanges=exchanges,
        # Each parameter passed the model's checks on its own, and the model checks each on
        # its own, so together they pass too.
        heatmap=HeatmapParams(**parts["heatmap"]),
        ignored_env=ignored_env,
        warnings=tuple(warnings),
        **parts["config"],
    )
