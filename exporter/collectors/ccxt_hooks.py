"""Hooks into ccxt.pro's WebSocket client, for the two things ccxt does not give us.

1. A frame that fails to decode or to parse raises inside ccxt's receive callback, which
   silently ends its receive loop: the socket stays open and the stream is dead from then on
   (seen with ccxt 4.5.90: one ``{bad json`` frame stops all later frames). The guard catches the
   error, reports the frame as malformed, and lets the loop go on.
2. Subscription acknowledgements and errors are not surfaced uniformly (Binance never resolves
   a rejected SUBSCRIBE). The observer sees every decoded frame and classifies it itself.
3. Liquidation data frames are taken by the observer, entry by entry, and not passed on: ccxt's
   parser stops at a frame's first bad entry and its shared cache overflows in a burst.
4. A frame over the client's size limit (ccxt asks aiohttp for 10 MiB) closes the connection
   with no trace of what it held; the observer counts it as lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import WebSocketError, WSCloseCode, WSMsgType

if TYPE_CHECKING:
    from collections.abc import Callable


class FrameObserver(Protocol):
    def on_connected(self) -> None: ...

    def on_frame(self, message: object) -> bool:
        """Sees every decoded frame; True when it consumed the frame (ccxt must not see it)."""
        ...

    def on_frame_too_large(self, error: Exception) -> None: ...

    def on_malformed(self, data: object, error: Exception) -> None: ...

    def on_handler_error(self, message: object, error: Exception) -> None: ...


def guarded_exchange_class(base: type[Any]) -> type[Any]:
    """A subclass of the ccxt.pro class ``base`` that reports frames to ``cryptoliq_observer``."""

    class Guarded(base):  # type: ignore[misc]  # ccxt ships no types
        cryptoliq_observer: FrameObserver | None

        def __init__(self, config: dict[str, Any], observer: FrameObserver) -> None:
            super().__init__(config)
            self.cryptoliq_observer = observer

        def client(self, url: str) -> Any:
            client = super().client(url)
            if not getattr(client, "cryptoliq_guarded", False):
                client.handle_text_or_binary_message = _guard(
                    client.handle_text_or_binary_message, self.cryptoliq_observer
                )
                client.handle_message = _watch_size(client.handle_message, self.cryptoliq_observer)
                client.cryptoliq_guarded = True
            return client

        def on_connected(self, client: Any, message: Any = None) -> None:
            if self.cryptoliq_observer is not None:
                self.cryptoliq_observer.on_connected()
            super().on_connected(client, message)

        def handle_message(self, client: Any, message: Any) -> Any:
            observer = self.cryptoliq_observer
            if observer is None:
                return super().handle_message(client, message)
            if observer.on_frame(message):
                return None
            try:
                return super().handle_message(client, message)
            except Exception as exc:  # noqa: BLE001 - would end ccxt's receive loop
                observer.on_handler_error(message, exc)
                return None

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded_{base.__name__}"
    return Guarded


def _guard(
    decode_and_dispatch: Callable[[object], None], observer: FrameObserver | None
) -> Callable[[object], None]:
    def guarded(data: object) -> None:
        try:
            decode_and_dispatch(data)
        except Exception as exc:  # noqa: BLE001 - any failure here would kill ccxt's receive loop
            if observer is not None:
                observer.on_malformed(data, exc)

    return guarded


def _watch_size(
    handle_ws_message: Callable[[Any], None], observer: FrameObserver | None
) -> Callable[[Any], None]:
    """Reports a frame refused for its size before ccxt turns it into a network error."""

    def watched(message: Any) -> None:
        if (
            observer is not None
            and getattr(message, "type", None) == WSMsgType.ERROR
            and isinstance(message.data, WebSocketError)
            and message.data.code == WSCloseCode.MESSAGE_TOO_BIG
        ):
            observer.on_frame_too_large(message.data)
        handle_ws_message(message)

    return watched
