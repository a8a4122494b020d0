"""Synthetic cities for benchmarks and property tests: a hierarchy of any size, built from
the same sections an admin writes and checked by the same loader, so a generated city is
always one the loader would accept."""

from __future__ import annotations

import random
from typing import Any

from ivr.routing.load import build_tables
from ivr.routing.tables import RoutingTables
from ivr.yamlsource import YamlDocument

GENERAL = ["consultation", "help", "complaint", "suggestion", "praise", "urban"]
_CATEGORIES: list[tuple[str, str, str, str, str]] = [
    # code, zh, en, kind, default urgency
    ("consultation", "政策咨询", "Consultation", "consultation", "normal"),
    ("help", "求助", "Help request", "help", "high"),
    ("complaint", "投诉", "Complaint", "complaint", "normal"),
    ("suggestion", "建议", "Suggestion", "suggestion", "low"),
    ("praise", "表扬", "Praise", "praise", "low"),
    ("consumer", "消费维权", "Consumer rights", "complaint", "normal"),
    ("health", "卫生健康", "Health", "consultation", "normal"),
    ("environment", "生态环境", "Environment", "report", "high"),
    ("urban", "城市管理", "Urban management", "complaint", "normal"),
    ("mayor", "市长热线", "Mayor's line", "suggestion", "normal"),
    ("emergency", "紧急求助", "Emergency", "help", "urgent"),
]
_DEPARTMENTS = [
    ("amr", "市场监督管理局", "Market Regulation Administration", "consumer", "12315",
     "legacy_consumer"),
    ("health", "卫生健康委员会", "Health Commission", "health", "12320", "legacy_health"),
    ("env", "生态环境局", "Ecology and Environment Bureau", "environment", "12369",
     "legacy_environment"),
    ("mayor-office", "市长热线办公室", "Mayor's Line Office", "mayor", "88880000", "legacy_mayor"),
]
_HOURS: list[Any] = [
    "24h",
    {"mon-fri": ["08:30-12:00", "13:30-17:30"]},
    {"mon-fri": ["08:30-17:30"], "sat": ["09:00-12:00"]},
    {"daily": ["08:00-20:00"]},
    {"daily": ["18:00-08:00"]},
    {"mon-fri": ["08:30-17:30", "22:00-06:00"]},
]


def generate_routing_data(communities: int, seed: int) -> dict[str, dict[str, Any]]:
    """The routing/ files of a random city with ``communities`` communities, as plain data
    (file name -> content), ready to be dumped as YAML or built with :func:`generate_city`."""
    if communities < 1:
        raise ValueError("a city needs at least one community")
    rng = random.Random(seed)
    street_count = max(1, communities // rng.randint(8, 25))
    district_count = max(1, street_count // rng.randint(4, 12))
    units: list[dict[str, Any]] = [{
        "code": "city", "name": {"zh": "市民热线中心", "en": "City Citizen Hotline Centre"},
        "level": "city", "categories": "all", "languages": ["zh", "en"], "hours": "24h",
        "queue": {"queue_timeout": 300},
    }]
    for code, zh, en, category, _, _ in _DEPARTMENTS:
        units.append({"code": code, "name": {"zh": zh, "en": en}, "level": "city",
                      "parent": "city", "area": ["city"], "categories": [category],
                      "hours": rng.choice(_HOURS)})
    units.append({"code": "water", "name": {"zh": "城市供水集团", "en": "City Water Supply"},
                  "level": "city", "parent": "city", "kind": "utility", "area": ["city"],
                  "categories": ["urban", "help"], "hours": "24h"})

    def territory(code: str, level: str, parent: str, index: int) -> dict[str, Any]:
        unit: dict[str, Any] = {
            "code": code, "name": {"zh": f"{level}{index}"}, "level": level, "parent": parent,
            "categories": rng.sample(GENERAL, rng.randint(1, len(GENERAL))),
            "languages": ["zh", "en"] if rng.random() < 0.1 else ["zh"],
            "hours": rng.choice(_HOURS),
            "queue": {"queue_timeout": rng.choice([30, 60, 90])},
        }
        return unit

    districts = [f"d{i}" for i in range(district_count)]
    streets = [f"s{i}" for i in range(street_count)]
    for index, code in enumerate(districts):
        unit = territory(code, "district", "city", index)
        unit["dids"] = [f"0216{index:04d}000"]
        units.append(unit)
        if rng.random() < 0.5:
            units.append({"code": f"amr-{code}", "name": {"zh": f"市场监管{code}分局"},
                          "level": "district", "parent": "amr", "area": [code],
                          "categories": ["consumer"], "hours": rng.choice(_HOURS)})
    for index, code in enumerate(streets):
        units.append(territory(code, "street", districts[index % district_count], index))
    social: list[str] = []
    for index in range(communities):
        code = f"c{index}"
        units.append(territory(code, "community", streets[index % street_count], index))
        if rng.random() < 0.02:
            social.append(code)
            units.append({"code": f"so-{code}", "name": {"zh": f"助老服务社{index}"},
                          "level": "community", "parent": code, "kind": "social_organisation",
                          "area": [code], "categories": ["help"], "hours": rng.choice(_HOURS)})

    agents: list[dict[str, Any]] = []
    for unit in units:
        for _ in range(rng.choice([0, 1, 1, 2])):
            languages = unit.get("languages", ["zh"])
            agents.append({"id": str(1001 + len(agents)), "name": f"agent{len(agents)}",
                           "unit": unit["code"],
                           "languages": rng.sample(languages, rng.randint(1, len(languages)))})

    rules: list[dict[str, Any]] = [
        {"name": "urgent-to-city", "match": {"min_priority": 2}, "target": "city"},
        {"name": "night-urban-to-water",
         "match": {"categories": ["urban"], "time": {"daily": ["20:00-08:00"]}},
         "target": "water"},
    ]
    rules += [{"name": f"elderly-help-{code}", "match": {"categories": ["help"], "within": code},
               "target": f"so-{code}"} for code in social]
    lines: list[dict[str, Any]] = [{"number": "12345", "name": {"zh": "12345热线"},
                                    "kind": "hotline", "entry": "main"}]
    lines += [{"number": number, "name": {"zh": zh}, "kind": "legacy", "entry": entry,
               "preset": {"category": category, "unit": code}}
              for code, zh, _, category, number, entry in _DEPARTMENTS]
    return {
        "categories.yaml": {"categories": [
            {"code": code, "name": {"zh": zh, "en": en}, "kind": kind, "default_urgency": urg}
            for code, zh, en, kind, urg in _CATEGORIES]},
        "units.yaml": {"timezone": "Asia/Shanghai", "units": units},
        "agents.yaml": {"agents": agents},
        "lines.yaml": {"lines": lines},
        "rules.yaml": {"locate": ["zone", "registry", "ivr"], "rules": rules},
        "callers.yaml": {"callers": [
            {"number": f"1380000{index:04d}", "unit": f"c{rng.randrange(communities)}"}
            for index in range(min(communities, 50))]},
    }


def generate_city(communities: int, seed: int) -> RoutingTables:
    """Routing tables of a random city with ``communities`` communities (e.g. 5,000)."""
    data = generate_routing_data(communities, seed)
    return build_tables([YamlDocument(file=f"<generated>/{name}", data=content)
                         for name, content in data.items()])
