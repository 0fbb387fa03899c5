"""Shared pieces of every dashboard: datasource, variables, queries, panel defaults, rendering.

The dashboard modules say what to show; this module says how every dashboard looks and behaves,
so the four dashboards stay consistent (same variables, links, colours, units) without copying.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final, Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from dashboards.config import DATASOURCE_NAME, DATASOURCE_UID, TAG

if TYPE_CHECKING:
    from collections.abc import Iterable

    from grafana_foundation_sdk.cog.builder import Builder

USD: Final = "currencyUSD"
SECONDS: Final = "s"
RATIO: Final = "percentunit"

DATASOURCE: Final = dashboard_model.DataSourceRef(type_val="prometheus", uid="${datasource}")
"""Every panel and variable queries the datasource chosen in the ``datasource`` variable."""

SIDE_COLORS: Final = {"long": "red", "short": "green"}
"""Liquidated longs are red (price fell), liquidated shorts green (price rose), as on every
liquidation chart traders already read."""

EXCHANGE: Final = 'exchange=~"$exchange"'
COIN: Final = 'coin=~"$coin"'
MARKET: Final = f"{EXCHANGE}, {COIN}"
"""Label matchers for the ``exchange`` and ``coin`` variables. The variables' "All" value is
``.*`` so that a new exchange or coin shows up without editing the dashboard."""

MIN_BAR_INTERVAL: Final = "1m"
"""Lower bound of ``$__interval`` on ``increase(...[$__interval])`` panels: at least four 15 s
scrapes per bar, so each bar's increase is computed from real samples."""


# --- variables ---------------------------------------------------------------------------------


def datasource_variable() -> dashboard_builder.DatasourceVariable:
    """Lets a user point the dashboards at another Prometheus; defaults to the provisioned one."""
    return (
        dashboard_builder.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(dashboard_model.VariableOption(text=DATASOURCE_NAME, value=DATASOURCE_UID))
    )


def label_variable(
    name: str, label: str, query: str, *, multi: bool = True, default: str | None = None
) -> dashboard_builder.QueryVariable:
    """A variable listing the values of ``name`` found by ``label_values(...)`` in ``query``.

    ``multi`` variables default to All (``.*``); single ones to ``default``.
    """
    variable = (
        dashboard_builder.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(f"label_values({query}, {name})")
        .refresh(dashboard_model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_model.VariableSort.ALPHABETICAL_ASC)
    )
    if multi:
        return (
            variable.multi(multi=True)
            .include_all(include_all=True)
            .all_value(".*")
            .current(dashboard_model.VariableOption(text="All", value="$__all"))
        )
    variable = variable.multi(multi=False).include_all(include_all=False)
    if default is not None:
        variable = variable.current(dashboard_model.VariableOption(text=default, value=default))
    return variable


def exchange_variable() -> dashboard_builder.QueryVariable:
    # cryptoliq_exchange_up exists for every enabled exchange from the first scrape on.
    return label_variable("exchange", "Exchange", "cryptoliq_exchange_up")


def coin_variable(*, multi: bool = True) -> dashboard_builder.QueryVariable:
    # Every configured market reports open interest; liquidation series appear only with the
    # first liquidation, so they would hide a quiet coin.
    return label_variable(
        "coin",
        "Coin",
        f"cryptoliq_open_interest_usd{{{EXCHANGE}}}",
        multi=multi,
        default=None if multi else "BTC",
    )


# --- queries -----------------------------------------------------------------------------------


def query(
    expr: str,
    legend: str | None = None,
    *,
    ref_id: str = "A",
    instant: bool = False,
    table: bool = False,
    heatmap: bool = False,
    exemplars: bool = False,
) -> prometheus.Dataquery:
    """A PromQL target; ``table`` and ``heatmap`` pick Grafana's result format.

    ``heatmap`` format turns cumulative ``le`` buckets into per-bucket counts: right for a
    Prometheus histogram, wrong for anything else (see ``liquidation_heatmap.py``).
    ``exemplars``: Grafana also asks Prometheus for the exemplars of every series the
    expression selects, and draws them as dots at their time and value.
    """
    target = prometheus.Dataquery().expr(expr).ref_id(ref_id)
    if legend is not None:
        target = target.legend_format(legend)
    if exemplars:
        target = target.exemplar(exemplar=True)
    target = target.instant() if instant else target.range()
    if table:
        target = target.format(PromQueryFormat.TABLE)
    elif heatmap:
        target = target.format(PromQueryFormat.HEATMAP)
    else:
        target = target.format(PromQueryFormat.TIME_SERIES)
    return target


# --- field config --------------------------------------------------------------------------------


def fixed_color(color: str) -> dashboard_model.DynamicConfigValue:
    return dashboard_model.DynamicConfigValue(
        id_val="color", value={"mode": "fixed", "fixedColor": color}
    )


def thresholds(*steps: tuple[float | None, str]) -> dashboard_builder.ThresholdsConfig:
    """Absolute thresholds; the first step's value is ``None`` (the base colour)."""
    return (
        dashboard_builder.ThresholdsConfig()
        .mode(dashboard_model.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_model.Threshold(value=value, color=color) for value, color in steps])
    )


def threshold_line(panel: timeseries.Panel, *values: float, color: str = "red") -> timeseries.Panel:
    """Draw thresholds into a time series panel as dashed lines: an alert's in red (one line
    per value, e.g. ``-x`` and ``x`` for an alert on either side), a reference in ``text``."""
    steps = [(value, color) for value in sorted(values)]
    return panel.thresholds(thresholds((None, "transparent"), *steps)).thresholds_style(
        common_builder.GraphThresholdsStyleConfig().mode(
            common_model.GraphThresholdsStyleMode.DASHED
        )
    )


def value_mapping(
    values: dict[str, tuple[str, str]],
) -> list[dashboard_model.ValueMapping]:
    """Map raw values to ``(text, colour)``, e.g. ``{"1": ("UP", "green")}``."""
    return [
        dashboard_model.ValueMap(
            options={
                raw: dashboard_model.ValueMappingResult(text=text, color=color, index=index)
                for index, (raw, (text, color)) in enumerate(values.items())
            }
        )
    ]


# --- panels ------------------------------------------------------------------------------------


def stat_panel(title: str, description: str, *, unit: str, sparkline: bool = False) -> stat.Panel:
    """A single-value panel showing the latest value of each series, name and value."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .reduce_options(
            common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(values=False)
        )
        .text_mode(common_model.BigValueTextMode.VALUE_AND_NAME)
        .color_mode(common_model.BigValueColorMode.VALUE)
        .graph_mode(
            common_model.BigValueGraphMode.AREA
            if sparkline
            else common_model.BigValueGraphMode.NONE
        )
        .justify_mode(common_model.BigValueJustifyMode.AUTO)
        .orientation(common_model.VizOrientation.AUTO)
    )


class _Overridable(Protocol):
    def override_by_name(
        self, name: str, properties: list[dashboard_model.DynamicConfigValue]
    ) -> Self: ...


PanelT = TypeVar("PanelT", bound=_Overridable)


def side_colored(panel: PanelT) -> PanelT:
    """Colour the ``long`` and ``short`` series (legend ``{{side}}``) by ``SIDE_COLORS``."""
    for side, color in SIDE_COLORS.items():
        panel = panel.override_by_name(side, [fixed_color(color)])
    return panel


def legend(calcs: list[str]) -> common_builder.VizLegendOptions:
    """Legend below the graph, as a table with the given reductions per series."""
    return (
        common_builder.VizLegendOptions()
        .display_mode(common_model.LegendDisplayMode.TABLE)
        .placement(common_model.LegendPlacement.BOTTOM)
        .show_legend(show_legend=True)
        .calcs(calcs)
    )


def tooltip() -> common_builder.VizTooltipOptions:
    """All series at the hovered time, largest first."""
    return (
        common_builder.VizTooltipOptions()
        .mode(common_model.TooltipDisplayMode.MULTI)
        .sort(common_model.SortOrder.DESCENDING)
    )


def timeseries_panel(title: str, description: str, *, unit: str) -> timeseries.Panel:
    """Lines over time, legend below as a table with mean and last value."""
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common_model.VisibilityMode.NEVER)
        .legend(legend(["mean", "lastNotNull"]))
        .tooltip(tooltip())
    )


def bars_panel(title: str, description: str, *, unit: str) -> timeseries.Panel:
    """Stacked bars, one per ``$__interval`` (at least ``MIN_BAR_INTERVAL``), legend with sums."""
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .interval(MIN_BAR_INTERVAL)
        .draw_style(common_model.GraphDrawStyle.BARS)
        .fill_opacity(80)
        .line_width(1)
        .stacking(common_builder.StackingConfig().mode(common_model.StackingMode.NORMAL))
        .legend(legend(["sum", "max"]))
        .tooltip(tooltip())
    )


def table_panel(title: str, description: str, *, unit: str) -> table.Panel:
    """A table of instant queries, one row per label set (see ``merge_table``)."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .align(common_model.FieldTextAlignment.AUTO)
        .inspect(inspect=False)
    )


def merge_table(
    keys: Iterable[str], columns: dict[str, str]
) -> list[dashboard_model.DataTransformerConfig]:
    """Transformations joining instant table queries into one row per label set.

    ``keys`` are the label columns to show first (the labels the queries aggregate by, so that
    rows of different queries match); ``columns`` maps each query's ref id to its column title,
    in display order. ``Time`` is dropped.
    """
    order = [*keys, *(f"Value #{ref}" for ref in columns)]
    return [
        dashboard_model.DataTransformerConfig(id_val="merge", options={}),
        dashboard_model.DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": {"Time": True},
                "indexByName": {name: index for index, name in enumerate(order)},
                "renameByName": {f"Value #{ref}": title for ref, title in columns.items()},
            },
        ),
    ]


# --- dashboards --------------------------------------------------------------------------------


def dashboard(
    uid: str,
    title: str,
    description: str,
    *,
    time_from: str,
    variables: list[Builder[dashboard_model.VariableModel]],
) -> dashboard_builder.Dashboard:
    """A read-only, auto-refreshing dashboard with the shared tag, links and crosshair.

    Read-only because the JSON is generated: edits in the UI would be lost on the next
    provisioning pass; change the Python and regenerate instead.
    """
    board = (
        dashboard_builder.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .readonly()
        .time(time_from, "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dashboard_model.DashboardCursorSync.CROSSHAIR)
        .link(
            dashboard_builder.DashboardLink("cryptoliq")
            .type(dashboard_model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(as_dropdown=False)
            .include_vars(include_vars=True)
            .keep_time(keep_time=True)
        )
    )
    for variable in variables:
        board = board.with_variable(variable)
    return board


def render(board: dashboard_builder.Dashboard) -> str:
    """Deterministic JSON of a built dashboard, with panel ids numbered in layout order.

    Fixed ids keep links to single panels (``viewPanel=N``) stable across regenerations.
    """
    model = board.build()
    for number, panel in enumerate(model.panels or [], start=1):
        panel.id_val = number
    return json.dumps(model, cls=JSONEncoder, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
