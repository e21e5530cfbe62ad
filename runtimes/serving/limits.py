"""What `edgekit serve` lets one client, one request and all of them together hold: the budgets of a server on an
open network, checked before authentication where they guard the connection and before decoding where they guard
memory."""

from __future__ import annotations

from dataclasses import dataclass, fields

MEGAPIXELS_4096 = 4096 * 4096


@dataclass(frozen=True)
class Limits:
    """Caps and deadlines of `edgekit serve` (a camera box has little memory and an open port).

    Connection (checked before the token): the request line and headers together at most `max_header_bytes`,
    received within `header_timeout_s` of the connection opening (or of a kept-alive request's first byte); a
    body received within `body_timeout_s` of its headers; an idle keep-alive connection closed after
    `keep_alive_timeout_s`; at most `max_connections` open at once (beyond it a new one gets 503 and is
    closed; the cap is lowered to fit the process's file descriptor limit).

    Predictions: a body of at most `max_body_bytes`; at most `max_images` images and `max_json_values` JSON
    numbers (nested-list pixels) in one; each image at most `max_image_pixels` and all of a request's at most
    `max_request_pixels`, read from the image headers before anything is decoded; at most `max_pixels_in_flight`
    decoded across all requests; at most `max_predicts_in_flight` requests read and processed at once, the rest
    waiting up to `queue_timeout_s` before a 503.
    """

    max_body_bytes: int = 16 << 20
    max_images: int = 32
    max_image_pixels: int = MEGAPIXELS_4096
    max_request_pixels: int = MEGAPIXELS_4096
    max_pixels_in_flight: int = 2 * MEGAPIXELS_4096
    max_json_values: int = 1 << 18
    max_predicts_in_flight: int = 2
    queue_timeout_s: float = 10.0
    max_header_bytes: int = 16 << 10
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_timeout_s: float = 5.0
    max_connections: int = 256

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Limits.{field.name} must be a positive number, got {value!r}")
        if not self.max_image_pixels <= self.max_request_pixels <= self.max_pixels_in_flight:
            raise ValueError(
                f"Limits need max_image_pixels <= max_request_pixels <= max_pixels_in_flight, got "
                f"{self.max_image_pixels}, {self.max_request_pixels}, {self.max_pixels_in_flight}"
            )
