"""Agents' prompts as the call path checks a payload against them.

A call request is refused when its payload would make its campaign's agent's prompt too long,
so the call path needs that prompt. An agent never changes once created (the API has no way to
change or delete one), so what was read of it stays true: each agent is read from Redis once
per process, on the first call that needs it, and kept. Only agents found are kept, and at
most `size` of them (the oldest kept is dropped first); a prompt the API accepts holds at most
`MAX_PROMPT_BYTES`. Each is kept with what it derives (its size, whether it has
placeholders), so a request renders nothing when there is nothing to fill in.
"""

from __future__ import annotations

from shared.rules.prompts import PromptTemplate
from shared.store.catalog import CatalogStore


class AgentPrompts:
    def __init__(self, catalog: CatalogStore, size: int = 1_000) -> None:
        self._catalog = catalog
        self._size = size
        self._entries: dict[str, PromptTemplate] = {}

    async def get(self, agent_id: str) -> PromptTemplate | None:
        """The agent's prompt, or None if there is no such agent."""
        kept = self._entries.get(agent_id)
        if kept is not None:
            return kept
        agent = await self._catalog.get_agent(agent_id)
        if agent is None:
            return None
        template = PromptTemplate.of(agent.prompt)
        if len(self._entries) >= self._size:
            self._entries.pop(next(iter(self._entries)))  # the oldest kept
        self._entries[agent_id] = template
        return template
