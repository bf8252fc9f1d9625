"""The call path's agent prompts: each agent read once and kept, misses never kept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from services.ingest.adapters.agent_prompts import AgentPrompts
from shared.models import Agent
from shared.rules.prompts import PromptTemplate
from shared.store.catalog import CatalogStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _agent(agent_id: str, prompt: str) -> Agent:
    return Agent(id=agent_id, environment_id="env-a", name="A", prompt=prompt, created_at=NOW)


class Catalog:
    """The one read AgentPrompts makes, counted."""

    def __init__(self) -> None:
        self.stored: dict[str, Agent] = {}
        self.reads = 0

    async def get_agent(self, agent_id: str) -> Agent | None:
        self.reads += 1
        return self.stored.get(agent_id)


def _prompts(catalog: Catalog, size: int = 2) -> AgentPrompts:
    return AgentPrompts(cast(CatalogStore, catalog), size=size)


async def test_an_agent_is_read_once_and_its_prompt_derived_once() -> None:
    catalog = Catalog()
    prompts = _prompts(catalog)
    catalog.stored["a1"] = _agent("a1", "Hello {{name}}")

    first = await prompts.get("a1")
    second = await prompts.get("a1")

    assert first == PromptTemplate.of("Hello {{name}}")
    assert second is first
    assert catalog.reads == 1


async def test_a_missing_agent_is_looked_up_every_time() -> None:
    catalog = Catalog()
    prompts = _prompts(catalog)

    assert await prompts.get("a1") is None
    catalog.stored["a1"] = _agent("a1", "Hi")
    assert await prompts.get("a1") == PromptTemplate.of("Hi")
    assert catalog.reads == 2


async def test_at_most_size_agents_are_kept_the_oldest_dropped_first() -> None:
    catalog = Catalog()
    prompts = _prompts(catalog, size=2)
    for agent_id in ("a1", "a2", "a3"):
        catalog.stored[agent_id] = _agent(agent_id, agent_id)
        await prompts.get(agent_id)
    assert catalog.reads == 3

    await prompts.get("a3")
    await prompts.get("a2")
    assert catalog.reads == 3
    await prompts.get("a1")
    assert catalog.reads == 4
