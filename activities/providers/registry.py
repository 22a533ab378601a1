"""Maps ``provider/model`` ids to the provider that serves them."""

from __future__ import annotations

import httpx

from activities.providers.anthropic import AnthropicProvider
from activities.providers.base import ChatProvider
from activities.providers.openai_compatible import OpenAICompatibleProvider
from activities.providers.simulated import SimulatedProvider
from tether.core.errors import ProviderRejectedError
from tether.core.settings import Settings

__all__ = ["KNOWN_PROVIDERS", "ProviderRegistry"]

KNOWN_PROVIDERS = ("openai", "anthropic", "simulated")


class ProviderRegistry:
    """Resolves model ids such as ``openai/gpt-4o-mini`` to a provider and its own model name.

    Providers are built once per registry and reuse the worker's shared HTTP client; the
    simulated provider is a single instance so its call counters (and hence its reproducible
    sequence) span the whole worker.

    Args:
        settings: API keys, base URLs and the simulated provider's knobs.
        client: The worker's shared HTTP client.
    """

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._client = client
        self._providers: dict[str, ChatProvider] = {
            "simulated": SimulatedProvider(
                latency_ms=settings.sim_latency_ms,
                failure_rate=settings.sim_failure_rate,
                quality=settings.sim_quality,
                seed=settings.sim_seed,
            )
        }

    @property
    def client(self) -> httpx.AsyncClient:
        """The worker's shared HTTP client (the embedder posts through it too)."""
        return self._client

    def resolve(self, model_id: str) -> tuple[ChatProvider, str]:
        """The provider for ``model_id`` and the model name to send it.

        Raises:
            ProviderRejectedError: The id is malformed, names an unknown provider, or names a
                provider whose API key is not configured.
        """
        provider_name, model = _split(model_id)
        cached = self._providers.get(provider_name)
        if cached is not None:
            return cached, model
        provider = self._build(provider_name)
        self._providers[provider_name] = provider
        return provider, model

    def available(self, model_id: str) -> bool:
        """Whether ``model_id`` can be called: a known provider whose key is configured."""
        try:
            provider_name, _ = _split(model_id)
        except ProviderRejectedError:
            return False
        if provider_name == "openai":
            return self._settings.openai_api_key is not None
        if provider_name == "anthropic":
            return self._settings.anthropic_api_key is not None
        return provider_name == "simulated"

    def _build(self, provider_name: str) -> ChatProvider:
        settings = self._settings
        if provider_name == "openai":
            if settings.openai_api_key is None:
                raise _missing_key("OPENAI_API_KEY", provider_name)
            return OpenAICompatibleProvider(
                self._client, settings.openai_base_url, settings.openai_api_key.get_secret_value()
            )
        if provider_name == "anthropic":
            if settings.anthropic_api_key is None:
                raise _missing_key("ANTHROPIC_API_KEY", provider_name)
            return AnthropicProvider(
                self._client,
                settings.anthropic_base_url,
                settings.anthropic_api_key.get_secret_value(),
            )
        raise ProviderRejectedError(
            f"unknown model provider {provider_name!r}: use one of {', '.join(KNOWN_PROVIDERS)} "
            "(model ids look like openai/gpt-4o-mini)",
            provider=provider_name,
        )


def _split(model_id: str) -> tuple[str, str]:
    provider_name, _, model = model_id.partition("/")
    if not provider_name or not model:
        raise ProviderRejectedError(
            f"model id {model_id!r} must look like provider/model, e.g. openai/gpt-4o-mini",
            provider=provider_name or "unknown",
        )
    return provider_name, model


def _missing_key(variable: str, provider_name: str) -> ProviderRejectedError:
    return ProviderRejectedError(
        f"{variable} is not set: set it to call {provider_name} models, or route to simulated/...",
        provider=provider_name,
    )
