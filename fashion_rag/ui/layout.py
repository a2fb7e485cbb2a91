"""The page: the panels' widgets laid out in one Blocks and wired to their handlers.

Read top to bottom: the query column, the results column (matches, outfit board, selected
product), the stylist column (reply, steps, taste), then the events, panel by panel."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from fashion_rag import Engine, serving, settings
from fashion_rag.retrieval.guard import MAX_CHARS
from fashion_rag.ui import insights, outfit, pieces, query, selection, stylist, taste
from fashion_rag.ui.session import bind, new_session
from fashion_rag.ui.widgets import (CheckedCheckbox, CheckedCheckboxGroup, CheckedDropdown, CheckedNumber,
                                    CheckedRadio, CheckedSlider, CheckedTextbox, QueryImage)

INTRO = ("Upload an outfit photo and/or describe what you want (*\"in red\"*, *\"no stripes\"*, "
         "*\"same vibe but for summer\"*): you get matching catalog pieces and a short styling note.")
THEME = gr.themes.Soft(primary_hue="rose", secondary_hue="slate", neutral_hue="slate")
CSS = """
.gradio-container {max-width: 1600px !important; margin: 0 auto !important;}
#status p {margin: 0;}
#reply {min-height: 120px;}
/* The grid keeps highlighting a position across new results; the panel below shows the pick. */
#gallery .thumbnail-item.selected {border-color: var(--border-color-primary); --ring-color: transparent;}
"""


def image_dirs(engine: Engine) -> list[str]:
    """The folders holding the indexed items' photos (as given and with symlinks resolved): the
    only folders the app serves files from, so the catalog table beside them stays private."""
    dirs = {settings.CATALOG_DIR / "images"}
    items = getattr(engine, "items", None)
    if items is not None and "path" in getattr(items, "columns", ()):
        dirs = {Path(p).parent for p in items["path"].unique()}
    return sorted({str(d) for d in dirs} | {str(d.resolve()) for d in dirs})


def build_demo(engine: Engine, notice: str = "") -> gr.Blocks:
    """The whole page around an already-loaded engine (loaded once at start-up, shared).
    `notice`: a warning for the page footer (e.g. a public link without a password)."""
    # Catalog photos are shown from where they are instead of being copied per request.
    gr.set_static_paths(image_dirs(engine))
    # Uploads and other cached files are deleted once as old as an expired session.
    age = max(1, int(settings.SESSION_TTL))
    values = getattr(engine, "attribute_values", {}) or {}
    modes = ["auto"] + [m for m in engine.modes if m != "auto"]

    with gr.Blocks(title="Fashion RAG · find it, then tweak it", fill_width=True,
                   delete_cache=(max(1, age // 4), age)) as demo:
        session = gr.State(new_session())
        picked = CheckedNumber(visible=False, precision=0, label="The position")
        gr.Markdown(f"# Fashion RAG · find it, then tweak it\n{INTRO}")
        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=300):
                image = QueryImage(label="Outfit photo (optional)", type="pil", height=240,
                                   sources=["upload", "webcam", "clipboard"], elem_id="query-image")
                # What /search takes: the piece's number (-1: the one the words name, else the most
                # prominent), or a box "x0,y0,x1,y1" (empty: none).
                piece_no = CheckedNumber(-1, visible=False, precision=0, minimum=-1, label="The piece")
                box = CheckedTextbox("", visible=False, label="The marked area")
                text = CheckedTextbox(label="What you want", lines=1, max_lines=3, max_length=MAX_CHARS,
                                  placeholder="e.g. same vibe but in softer colours for fall")
                with gr.Row():
                    search_btn = gr.Button("Search", variant="primary", min_width=100)
                    complete_btn = gr.Button("Complete the look", min_width=100, elem_id="complete")
                # A person's photo: the pieces they wear, as chips and as boxes over the photo.
                piece = CheckedRadio([], value=None, label="Search for", info=pieces.PIECES_INFO,
                                     visible=False, elem_id="pieces")
                pieces_view = gr.AnnotatedImage(label="Pieces in your photo", visible=False, height=240,
                                                show_legend=True, elem_id="pieces-view")
                rows, labels = query.example_rows()
                examples = gr.Examples(rows, inputs=[image, text], example_labels=labels,
                                       cache_examples=False, label="Try one", api_visibility="private")
                with gr.Accordion("Mark a piece by hand", open=False, elem_id="marking-box"):
                    marking = gr.ImageEditor(type="numpy", sources=[], transforms=[], layers=False,
                                             height=300, show_label=False, elem_id="marking",
                                             brush=gr.Brush(colors=["#e11d48"], default_size=18))
                    mark_btn = gr.Button("Search the marked area", size="sm", elem_id="mark-search")
                with gr.Accordion("Advanced", open=False):
                    mode = CheckedRadio(modes, value="auto", label="Mode",
                                        info="auto: photo, text or both, from what you give")
                    weight = CheckedSlider(0, 1, value=0.5, step=0.05, label="Text weight",
                                           info="How much your words count against the photo")
                    k = CheckedSlider(1, 40, value=12, step=1, label="Number of results",
                                      info=f"per slot in an outfit: at most {outfit.SLOT_HITS}")
                    filters = [CheckedDropdown(values.get(col, []), value=[], multiselect=True,
                                               label=label) for col, label in query.FILTERS]
            with gr.Column(scale=8, min_width=420):
                status = gr.Markdown(query.STATUS_EMPTY, label="status", elem_id="status")
                with gr.Tabs(selected="matches") as views:
                    with gr.Tab("Matches", id="matches"):
                        gallery = gr.Gallery(label="Matches", columns=4, height=520, object_fit="contain",
                                             allow_preview=False, interactive=False, elem_id="gallery")
                        classes = getattr(getattr(engine, "reader", None), "classes", None) or {}
                        with gr.Row(visible=bool(classes), elem_id="corrections"):
                            corrections = [CheckedDropdown([query.AS_READ] + [(v, v) for v in classes.get(attr, [])],
                                                           value="", label=f"{label} in the photo", min_width=120,
                                                           elem_id=f"correct-{attr}") for attr, label in query.READ]
                    with gr.Tab("Outfit", id="outfit", elem_id="outfit"):
                        board = outfit.board_layout()
                        outfit_json_box = gr.JSON(visible=False)
                    insights.tab(engine, demo)  # the owner's demand report
                with gr.Accordion("Selected product", open=True):
                    with gr.Row(equal_height=False):
                        chosen = gr.Image(label="photo", show_label=False, interactive=False,
                                          height=200, scale=1, min_width=140, buttons=[],
                                          elem_id="chosen")
                        with gr.Column(scale=3):
                            details = gr.Markdown(selection.DETAILS_EMPTY, label="details", elem_id="details")
                            with gr.Row():
                                refine_btn = gr.Button("Use as new reference", size="sm")
                                complete_item_btn = gr.Button("Complete the look with this", size="sm",
                                                              elem_id="complete-item")
                            with gr.Row():
                                like_btn = gr.Button("👍 Like", size="sm", elem_id="like")
                                pass_btn = gr.Button("👎 Pass", size="sm", elem_id="pass")
            with gr.Column(scale=4, min_width=280):
                gr.Markdown("### Stylist")
                reply_md = gr.Markdown(stylist.REPLY_EMPTY, label="reply", elem_id="reply", max_height=560)
                with gr.Accordion("Steps", open=True):
                    history = gr.Markdown(selection.HISTORY_EMPTY, label="history", elem_id="history")
                    undo_btn = gr.Button("Undo last step", size="sm")
                with gr.Accordion("Your taste", open=True, elem_id="taste"):
                    taste_md = gr.Markdown(taste.TASTE_EMPTY, elem_id="taste-summary")
                    personal = CheckedCheckbox(True, label="Personalise my results", elem_id="personal")
                    with gr.Row():
                        quiz_btn = gr.Button("Take the style quiz", size="sm", elem_id="quiz-start")
                        forget_btn = gr.Button("Forget me", size="sm", variant="stop", elem_id="forget")
                    quiz_msg = gr.Markdown()
                    with gr.Column(visible=False, elem_id="quiz-box") as quiz_box:  # shown during the quiz
                        quiz_gallery = gr.Gallery(show_label=False, columns=2, height=420, object_fit="contain",
                                                  allow_preview=False, interactive=False, elem_id="quiz")
                        quiz_picks = CheckedCheckboxGroup([], label="Looks you like", elem_id="quiz-picks")
                        with gr.Row():
                            quiz_next = gr.Button("Next", size="sm", elem_id="quiz-next")
                            quiz_skip = gr.Button("Skip the quiz", size="sm", elem_id="quiz-skip")

        # Search and reading: every search path records a step, then the stylist replies to it.
        search_inputs = [image, text, mode, weight, k, *filters, *corrections, personal, piece_no, box, session]
        run_search = bind(query.search, engine)
        reading_json = gr.JSON(visible=False)

        def searched(event, **api):
            """After a search: its pieces as chips and boxes, then the history and the reply."""
            event.success(bind(pieces.show, engine), [image, session], [piece, pieces_view, session],
                          show_progress="hidden", api_visibility="private")
            then_reply(event, **api)

        def then_reply(event, keep_selection: bool = False, **api):
            """After a step: refresh the history (unless only a piece was swapped), then the reply."""
            after = event.success(None, None, reply_md, js=f"() => {json.dumps(stylist.REPLY_PENDING)}",
                                  show_progress="hidden") if keep_selection else \
                event.success(selection.after_step, session, [history, chosen, details, reply_md],
                              show_progress="hidden", api_visibility="private")
            after.success(stylist.reply, session, reply_md, show_progress="minimal", **api)

        search_outputs = [gallery, status, views, session]
        searched(gr.on([search_btn.click, text.submit], run_search, search_inputs,
                       search_outputs, api_name="search", concurrency_id="search"),
                 api_name="reply")
        # An example click fills the inputs, then searches: one click to a first result.
        searched(examples.load_input_event.then(
            run_search, search_inputs, search_outputs, concurrency_id="search",
            api_visibility="private"), api_visibility="private")

        # A correction re-runs the search at once; a new photo starts from its own reading.
        searched(gr.on([c.input for c in corrections], run_search, search_inputs, search_outputs,
                       concurrency_id="search", api_visibility="private"), api_visibility="private")

        # Pieces: a chip or a box over the photo searches that piece; a marked area searches itself.
        private = {"api_visibility": "private", "show_progress": "hidden"}
        searched(piece.input(pieces.choose, piece, [piece_no, box], **private)
                 .then(run_search, search_inputs, search_outputs, concurrency_id="search", api_visibility="private"),
                 api_visibility="private")
        searched(pieces_view.select(pieces.clicked_box, None, [piece_no, box], **private)
                 .then(run_search, search_inputs, search_outputs, concurrency_id="search", api_visibility="private"),
                 api_visibility="private")
        searched(mark_btn.click(pieces.marked_box, [marking, image], box, **private)
                 .success(run_search, search_inputs, search_outputs, concurrency_id="search",
                          api_visibility="private"), api_visibility="private")
        image.change(pieces.forget_choice, None, [piece_no, box], **private) \
            .then(pieces.marking_canvas, image, marking, **private)
        gr.Button(visible=False).click(bind(pieces.find, engine), image, gr.JSON(visible=False), api_name="pieces")

        # Outfits: from the photo and words, or around the selected product; pieces swap per slot.
        outfit_outputs = [outfit_json_box, status, *board.outputs, views, session]
        then_reply(complete_btn.click(bind(outfit.complete, engine), search_inputs, outfit_outputs,
                                      api_name="complete", concurrency_id="search"), api_visibility="private")
        then_reply(complete_item_btn.click(bind(outfit.complete_item, engine), [text, k, session],
                                           outfit_outputs, api_name="complete_item", concurrency_id="search"),
                   api_visibility="private")
        slot_no = CheckedNumber(visible=False, precision=0, label="The slot")
        choice_no = CheckedNumber(visible=False, precision=0, label="The piece")
        swap_outputs = [outfit_json_box, *board.outputs, chosen, details, session]
        then_reply(gr.Button(visible=False).click(outfit.swap, [slot_no, choice_no, session], swap_outputs,
                                                  api_name="swap"), True, api_visibility="private")
        for n in range(outfit.MAX_SLOTS):
            then_reply(board.next_buttons[n].click(bind(outfit.swap, n, 1), session, swap_outputs,
                                                   api_visibility="private", show_progress="hidden"),
                       True, api_visibility="private")
            then_reply(board.galleries[n].select(selection.pick, None, choice_no, show_progress="hidden",
                                                 api_visibility="private")
                       .then(bind(outfit.swap, n), [choice_no, session], swap_outputs,
                             api_visibility="private", show_progress="hidden"), True, api_visibility="private")
        image.upload(None, None, corrections, js=f"() => {json.dumps([''] * len(corrections))}",
                     show_progress="hidden")
        gr.Button(visible=False).click(bind(query.describe, engine), image, reading_json,
                                       api_name="describe")

        # Selection: a click shows the product; "Use as new reference" makes it the query photo.
        gallery.select(selection.pick, None, picked, show_progress="hidden", api_visibility="private") \
            .then(selection.select_item, [picked, session], [chosen, details, session], api_name="select",
                  show_progress="hidden")
        refine_btn.click(selection.use_as_reference, session, [image, text, session], api_name="refine")

        # Taste: the profile id lives in the browser; likes, passes and the quiz teach it.
        browser_profile = gr.BrowserState("", storage_key="fashion_rag_profile")
        demo.load(taste.load_profile, [browser_profile, session], [session, browser_profile],
                  api_visibility="private") \
            .then(bind(taste.panel, engine), session, taste_md, api_visibility="private")
        for button, liked in ((like_btn, True), (pass_btn, False)):
            button.click(bind(taste.rate_selected, engine, liked), session, [taste_md, session],
                         api_visibility="private")
            gr.Button(visible=False).click(bind(taste.rate_position, engine, liked),
                                           [picked, session], [taste_md, session],
                                           api_name="like" if liked else "pass")
        gr.Button(visible=False).click(bind(taste.profile_info, engine), session, gr.JSON(visible=False),
                                       api_name="profile")
        forget_btn.click(bind(taste.forget, engine), session, [taste_md, session, browser_profile],
                         api_name="forget")
        quiz_outputs = [quiz_box, quiz_gallery, quiz_picks, quiz_msg, taste_md, session]
        quiz_btn.click(bind(taste.start_quiz, engine), session, quiz_outputs, api_visibility="private")
        quiz_next.click(bind(taste.quiz, engine), [quiz_picks, session], quiz_outputs, api_name="quiz")
        quiz_skip.click(taste.skip_quiz, session, [quiz_box, quiz_gallery, quiz_picks, quiz_msg, session],
                        api_visibility="private")

        # History: Undo restores the previous step everywhere it shows.
        undo_btn.click(selection.undo, session, [image, text, gallery, status, reply_md, history, chosen,
                                                 details, *board.outputs, views, session], api_name="undo")
        if notice:
            gr.Markdown(f"⚠️ {notice}", elem_id="notice")
    return demo


def launch(demo: gr.Blocks, login: serving.LoginThrottle | None = None, photo_folders: Sequence[str] = (),
           **kwargs) -> tuple:
    """demo.launch with the page's theme and CSS (Gradio 6 takes them at launch) and the guards of
    a public server (fashion_rag.serving): request and upload limits, the login throttled per
    address (`login`), clear errors, no monitoring page (nor its per-event records) unless asked
    for, idle sessions and unused uploads dropped; the queue: two searches at a time, 64 waiting.
    The photos in `photo_folders` (`image_dirs`) are served from memory when no login is asked."""
    kwargs.setdefault("max_file_size", int(settings.MAX_UPLOAD_MB * 1024 * 1024))
    # Never the catalog table, even if a catalog keeps images beside it (blocked beats allowed).
    table = settings.CATALOG_DIR / "styles.csv"
    kwargs.setdefault("blocked_paths", sorted({str(table), str(table.resolve())}))
    kwargs.setdefault("state_session_capacity", settings.MAX_SESSIONS)
    if not kwargs.setdefault("enable_monitoring", settings.MONITORING):
        serving.skip_event_analytics()
    demo.queue(default_concurrency_limit=2, max_size=64)
    guards = [Middleware(serving.BodyLimit, max_bytes=int(settings.MAX_REQUEST_KB * 1024),
                         upload_bytes=kwargs["max_file_size"] + 64 * 1024),
              Middleware(serving.UploadGuard)]
    if login is None and photo_folders:
        guards.insert(0, Middleware(serving.CatalogImages, folders=list(photo_folders),
                                    blocked=kwargs["blocked_paths"]))
    if login is not None:
        kwargs["auth"] = login.check
        guards.append(Middleware(serving.LoginAddress))
    app = kwargs.setdefault("app_kwargs", {})
    app.setdefault("middleware", []).extend(guards)
    app.setdefault("exception_handlers", {}).update(dict.fromkeys(serving.MALFORMED, serving.malformed_request))
    serving.trust_proxies()
    serving.quiet_bad_requests()
    serving.clear_errors(demo)
    serving.tune_heap()
    launched = demo.launch(theme=THEME, css=CSS, **kwargs)
    serving.expire_sessions_forever(demo)
    serving.every(max(1.0, min(60.0, settings.UNUSED_UPLOAD_TTL / 4)), serving.UPLOADS.sweep, "Uploads deleted", demo)
    return launched
