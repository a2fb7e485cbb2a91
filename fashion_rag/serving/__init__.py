"""What a public server needs beyond the page. A share link or a Space is open to anyone, and
Gradio on its own keeps every session until the process ends, stores any upload, checks a
password as fast as it can be guessed and lets one visitor call the paid model in a loop:

- limits     rate limits per client address (the paid model's among them), the address itself,
             a bound on request bodies
- login      the password, throttled per address with a global ceiling
- uploads    photos only, a quota per address, unused uploads deleted, the folder bounded
- sessions   idle sessions dropped, the heap given back, no event records kept for nobody to read
- failures   bad requests as clear messages and one log line
- images     the catalog's photos from memory, before Gradio's file route
"""
from fashion_rag.serving.failures import MALFORMED, clear_errors, malformed_request, quiet_bad_requests
from fashion_rag.serving.images import CatalogImages
from fashion_rag.serving.limits import (BodyLimit, RateLimit, client_address, model_call_held,
                                        trust_proxies)
from fashion_rag.serving.login import LoginAddress, LoginThrottle
from fashion_rag.serving.sessions import (every, expire_sessions, expire_sessions_forever, skip_event_analytics,
                                          tune_heap)
from fashion_rag.serving.uploads import UPLOADS, UploadGuard

__all__ = ["MALFORMED", "UPLOADS", "BodyLimit", "CatalogImages", "LoginAddress", "LoginThrottle", "RateLimit",
           "UploadGuard", "clear_errors", "client_address", "every", "expire_sessions", "expire_sessions_forever",
           "malformed_request", "model_call_held", "quiet_bad_requests", "skip_event_analytics", "trust_proxies",
           "tune_heap"]
