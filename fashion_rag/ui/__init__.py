"""The web page: one Gradio Blocks app around an engine that is already loaded.

No retrieval logic lives here. Handlers turn widget values into `engine.search(...)` calls and
results into gallery items, Markdown and per-session state (gr.State), and every action is a
named API endpoint, so `gradio_client` and the page's "Use via API" drive the same code:

    /search (image, text, mode, weight, k, gender, article_type, colour, season, usage,
             type_is, gender_is, colour_is, pattern_is)
            -> (gallery, status line); the last four correct the photo reading ("" = as read)
    /describe (image)     -> what the photo shows: per attribute, ranked values with confidences
    /reply  ()            -> styling reply for the session's latest results (streamed)
    /complete (same inputs as /search) -> an outfit for the photo and/or words: (outfit as JSON,
            status line, board...); k = pieces per slot (at most SLOT_HITS on the page)
    /complete_item (text, k) -> an outfit around the selected product
    /swap   (slot, choice) -> piece `choice` of outfit slot `slot` becomes that slot's piece
    /select (index)       -> photo and details of result `index`, with why it matched
    /refine ()            -> the selected result's photo becomes the query photo (text cleared)
    /undo   ()            -> the previous step (search or outfit) is restored with its reply
    /like, /pass (index)  -> feedback on result `index`: the session's taste profile learns it
    /profile ()           -> the profile id and what it has learned; /forget () deletes it
    /quiz   (picks)       -> the style quiz: the picked positions of the shown round are liked,
                             the next round is shown (the first call starts the quiz)
/search takes one more input at the end, personal (default true): use the taste profile.

One module per panel holds its handlers and texts: query (search and reading corrections),
outfit (the outfit board and swaps), selection (selected product, steps and undo), taste
(likes, passes and the quiz), stylist (the streamed reply); layout lays them out and wires them;
format, session and widgets are what they share.
"""
from fashion_rag.ui.layout import build_demo, image_dirs, launch

__all__ = ["build_demo", "image_dirs", "launch"]
