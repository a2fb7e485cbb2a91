"""Bad requests: a clear message for the visitor and one line in the server log, never a stack
trace. Two nets: one under the web server (requests Gradio's routes fail on) and one around every
event (values Gradio fails on before any handler of ours sees them)."""
from __future__ import annotations

import logging

import gradio as gr
from gradio.exceptions import ComponentProcessingError, InvalidPathError
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import PlainTextResponse

log = logging.getLogger(__name__)

NOT_UPLOADED = ("The photo must be a file uploaded to this app: the page does it for you; from code, pass "
                "handle_file(path) with gradio_client, or POST the file to /gradio_api/upload first.")
UNREADABLE = "A value in this request is not one this page can take; the API page lists what each input takes."
UNEXPECTED = "That failed unexpectedly. Please try again, or try another photo or wording."
MALFORMED = (KeyError, IndexError, TypeError, ValueError)  # what Gradio's routes raise on a malformed request


class OneLineErrors(logging.Filter):
    """A request that Gradio's routes fail on (an unknown endpoint number, a malformed body) is
    the client's mistake: one line in the server log, not a stack trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (KeyError, IndexError, ValueError, TypeError)):
            record.msg, record.args = f"Rejected a malformed request ({type(exc).__name__}: {str(exc)[:200]})", ()
            record.exc_info, record.exc_text = None, None
        return True


async def malformed_request(request: Request, exc: Exception) -> PlainTextResponse:
    """The answer to a request one of Gradio's routes failed on with one of MALFORMED (an unknown
    endpoint number, a body of the wrong shape): HTTP 400 and one log line, instead of a 500."""
    log.info("Rejected a malformed request (%s: %s)", type(exc).__name__, str(exc)[:200])
    return PlainTextResponse("This request is malformed or names an endpoint this app does not have; "
                             "/gradio_api/info lists the endpoints and their inputs.", status_code=400)


def quiet_bad_requests() -> None:
    """Install OneLineErrors on the web server's error log (once)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, OneLineErrors) for f in logger.filters):
        logger.addFilter(OneLineErrors())


def clear_errors(demo: gr.Blocks) -> None:
    """Wrap the app's entry point for events so that what Gradio itself rejects (a file path that
    was never uploaded, a malformed file value, an example that does not exist) is a clear
    message and one log line; anything else unexpected is logged once, with its stack trace (a
    bug to fix), and the visitor gets a generic message. gr.Error passes through as it is."""
    process_api = demo.process_api

    async def guarded(*args, **kwargs):
        block_fn, inputs = kwargs.get("block_fn"), kwargs.get("inputs")
        wanted = len(getattr(block_fn, "inputs", None) or [])
        if isinstance(inputs, list) and len(inputs) < wanted:  # Gradio would fail with a stack trace
            log.info("Rejected input: %d of %d values", len(inputs), wanted)
            raise gr.Error(f"This request sends {len(inputs)} input values; the endpoint takes {wanted} "
                           "(the API page lists them).", print_exception=False)
        clicked = getattr(kwargs.get("event_data"), "_data", None)
        if getattr(block_fn, "collects_event_data", False) and not (isinstance(clicked, dict) and "index" in clicked):
            log.info("Rejected input: a click event without the click")  # the page's own gallery clicks
            raise gr.Error("This event is the page's own: it needs the click it answers (the position clicked).",
                           print_exception=False)
        try:
            return await process_api(*args, **kwargs)
        except gr.Error:
            raise
        except (InvalidPathError, ValidationError, ComponentProcessingError) as exc:
            log.info("Rejected input: %s", " ".join(str(exc).split())[:300])
            message = UNREADABLE if isinstance(exc, ComponentProcessingError) else NOT_UPLOADED
            raise gr.Error(message, print_exception=False) from None
        except Exception:
            log.exception("An event failed")
            raise gr.Error(UNEXPECTED, print_exception=False) from None

    demo.process_api = guarded
