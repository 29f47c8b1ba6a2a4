"""Plain-language text for readers who do not read code: the "What am I looking at?" page (/guide), the
sentence under each part of a feature page, and the sentence that explains each report kind.

All of it lives here, once: templates read it through `GUIDE`, `FEATURE_NOTES` and `report_guide` /
`figure_sentence`. Text is plain strings (Jinja escapes it); a term is defined where it is first used.
"""

from __future__ import annotations

from dataclasses import dataclass

from interplab.reports.index import FigureEntry


@dataclass(frozen=True)
class Topic:
    """One entry of the guide: an anchor (#id on /guide), a heading and a few short paragraphs."""

    id: str
    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class KindGuide:
    """What a report kind is for, and how to read its figures (the fallback under a figure without caption)."""

    kind: str
    title: str
    what: str
    figures: str


CONCEPTS: tuple[Topic, ...] = (
    Topic("model", "The language model", (
        "A language model is a program that reads text as a sequence of tokens (whole words or pieces of "
        "words) and predicts which token comes next. Inside, each token is represented by a long list of "
        "numbers that is updated layer by layer; these numbers are the model's internal state (its "
        "\"activations\").",
        "Interpretability tries to say in human terms what those numbers mean and which of them cause the "
        "model's behaviour.",
    )),
    Topic("sae", "Sparse autoencoder (SAE)", (
        "The model's internal numbers are hard to read directly: each one mixes many concepts. A sparse "
        "autoencoder is a second, small model trained to rewrite that state as a sum of a few items out of a "
        "large dictionary (thousands of entries). \"Sparse\" means only a handful of entries are switched on "
        "for any one token.",
        "The hope is that each dictionary entry corresponds to one recognisable idea. That is a hypothesis to "
        "check, entry by entry, with the evidence on its feature page; it is not guaranteed.",
    )),
    Topic("latent", "Latent (feature)", (
        "One entry of an SAE's dictionary is called a latent (or feature). For every token the SAE gives each "
        "latent a number, its activation: 0 means \"off\", larger means the latent is more strongly present.",
        "A feature page collects the evidence about one latent: how often and how strongly it fires, the "
        "texts where it fires, which words it pushes the model towards, and candidate explanations.",
    )),
    Topic("examples", "Activation examples", (
        "Excerpts of real text from the data the SAE was studied on. Each token is highlighted by how strongly "
        "the latent fired on it: darker means stronger, no colour means off. Hover a token to see the exact "
        "number.",
        "Top examples are the strongest cases only, which can mislead: the quantile samples show texts from "
        "every range of strength, weak ones included, so you can check whether the pattern still holds when the "
        "latent fires weakly.",
    )),
    Topic("logits", "Logit effects: promoted and suppressed tokens", (
        "When a latent is on, it nudges the model's prediction of the next token. Promoted tokens are the ones "
        "it makes more likely; suppressed tokens the ones it makes less likely. The number is the size of the "
        "push on the model's raw score for that token (its \"logit\"), before any other part of the model "
        "responds.",
        "This is a direct, first-order reading: it shows what the latent writes, not everything that follows "
        "from it; it is exact only for the model's last layer and a rough guide for earlier ones.",
    )),
    Topic("histogram", "The activation histogram", (
        "A bar chart of how often the latent takes each strength when it is on: the horizontal axis is the "
        "activation, each bar's height the number of tokens at that value. Tokens where the latent is off are "
        "not counted.",
        "Most latents fire weakly often and strongly rarely, so bars usually fall to the right. The frequency "
        "above it is the share of all tokens on which the latent is on at all.",
    )),
    Topic("explanations", "Explanations and their scores", (
        "An explanation is a short description of when the latent fires, written by a language model from its "
        "examples (or by a simple baseline that lists the most frequent tokens).",
        "Each explanation is tested: a judge model reads the explanation and unseen excerpts and guesses which "
        "ones make the latent fire. Detection and fuzzing are its balanced accuracy: 1.0 is always right, 0.5 "
        "is a coin flip. A good explanation should score clearly above the baseline.",
    )),
    Topic("neighbours", "Nearest latents", (
        "Other latents of the same SAE whose directions inside the model are most alike (cosine similarity: 1 "
        "is the same direction, 0 unrelated). Neighbours often fire on related ideas, or split one idea into "
        "finer ones.",
    )),
    Topic("live", "Live inference", (
        "Type any text and see, token by token, which latents of an SAE switch on and how strongly. This runs "
        "the model on your text, so you can test a guess about a latent on examples of your own choosing.",
    )),
    Topic("steering", "Steering", (
        "Steering adds a direction (a latent's, or a \"steering vector\" built from contrasting examples) to the "
        "model's internal state while it writes, and shows the text with and without it. The coefficient sets "
        "how hard to push: 0 is the unchanged model, larger values push more, negative values push the other "
        "way.",
        "If pushing a latent makes the model write about its supposed topic, that is evidence the latent is "
        "used for it; text that turns to nonsense means the push was too strong.",
    )),
    Topic("lens", "The logit lens", (
        "The logit lens asks each layer of the model which next token it would predict if the model stopped "
        "there. Reading down the layers shows how the final answer forms. A tuned lens adds a small learnt "
        "correction per layer, so early layers are read more faithfully.",
    )),
    Topic("reports", "Reports", (
        "A report is the saved result of one experiment: a title, a table of headline numbers, figures (each "
        "with a sentence on how to read it) and tables of all values. The kinds are described below.",
    )),
)
"""Concepts, in the order the guide page shows them."""

REPORT_KINDS: tuple[KindGuide, ...] = (
    KindGuide(
        "toy", "Toy models of superposition",
        "Tiny models trained on made-up data where the true features are known, to show how a model can pack "
        "more features than it has dimensions (\"superposition\") and when it does.",
        "Arrows, bars or grids show how the small model arranges the known features; each figure's sentence "
        "says which pattern to look for.",
    ),
    KindGuide(
        "probe-study", "Probe study",
        "A probe is a very simple classifier trained to read one property (for example, whether a statement is "
        "true) from the model's internal state. The study asks at which layer the property is readable and "
        "whether a probe trained on one dataset still works on others.",
        "Higher accuracy means the property is easier to read; 0.5 is a coin flip. In the grids, the row is "
        "the dataset a probe learnt from and the column the one it is tested on.",
    ),
    KindGuide(
        "steering-sweep", "Steering sweep",
        "The same steering direction applied at several strengths, measuring how much the text moves towards "
        "the target (for example, mentioning a topic) and how much it stays fluent.",
        "Look for a strength that raises the target while the perplexity (how surprised the model is by its "
        "own text; higher means less fluent) stays low.",
    ),
    KindGuide(
        "steering-compare", "Steering vector comparison",
        "Compares several steering vectors by how alike their directions are, for example the same concept "
        "built in different languages.",
        "Each cell is the cosine similarity of two vectors: 1 is the same direction, 0 unrelated, -1 opposite.",
    ),
    KindGuide(
        "autointerp", "Automatic interpretation",
        "Explanations of latents written by a language model, each scored by a judge that tries to predict from "
        "the explanation alone where the latent fires.",
        "Scores are balanced accuracies: 1.0 is a perfect explanation, 0.5 no better than guessing; compare "
        "with the token-statistics baseline.",
    ),
    KindGuide(
        "attribution-graph", "Attribution graph",
        "A map of how the model got from a prompt to its next word: which internal features (from "
        "transcoders, dictionaries like an SAE's) fed which others, and how strongly.",
        "Open the interactive graph: its nodes are tokens of the prompt, features and the predicted word; its "
        "links show which node influenced which, stronger links mattering more. The interventions table (when present) says how well the simplified model's predictions match "
        "the real model's when top features are switched off.",
    ),
    KindGuide(
        "attention-mlp", "Attention-MLP interactions",
        "Which attention heads (the parts of the model that move information between positions in the text) "
        "switch on one chosen feature, and from which earlier tokens they bring that information.",
        "In the grids, rows are layers and columns heads; bright cells are the heads that feed the feature.",
    ),
    KindGuide(
        "organism", "Model organism",
        "A model deliberately trained to have a hidden behaviour (for example, misbehaving only when a trigger "
        "phrase appears), so that auditing methods can be tested on a case where the truth is known.",
        "The loss curve shows the training working; the summary gives how often the behaviour appears on "
        "prompts with and without the trigger, and the table shows held-out answers.",
    ),
    KindGuide(
        "audit", "Audit of a model organism",
        "An attempt to find an organism's hidden behaviour without being told it, using probes, SAE latents and "
        "behaviour tests, then checking the finding by removing it.",
        "The walkthrough page tells the audit step by step. AUROC 1.0 means a probe separates triggered from "
        "clean prompts perfectly, 0.5 chance; rank 1 means a method picked the true behaviour first.",
    ),
    KindGuide(
        "unlearning", "Unlearning: removed or suppressed?",
        "Methods that try to make a model forget some facts, then attacks that check whether the facts are "
        "really gone or only hidden (retraining briefly, probing the internals, removing one direction).",
        "Good unlearning has low scores on the forgotten facts and high scores on the rest, and stays low under "
        "attack; a score that comes back under attack means the facts were only suppressed.",
    ),
    KindGuide(
        "tuned-lens", "Logit lens and tuned lens",
        "How well each layer's early guess at the next token matches the model's final prediction, read with "
        "the plain logit lens and with a tuned lens (a small learnt correction per layer).",
        "Lower KL divergence (a measure of how different two predictions are; 0 means identical) is better; the "
        "lens whose line lies lower reads the layers more faithfully.",
    ),
    KindGuide(
        "dyck", "Dyck lab: a bracket-counting circuit",
        "A tiny model trained to tell balanced bracket strings like (()()) from unbalanced ones, small enough to "
        "find the parts that do the work: where it tracks nesting depth and which attention heads matter.",
        "Probe accuracy by layer shows where depth becomes readable; the ablation grids show how much accuracy "
        "is lost when one head is switched off (one bright cell: one head does the job).",
    ),
    KindGuide(
        "crosslingual", "Cross-lingual lab",
        "Whether a multilingual model uses shared internal features for the same idea in different languages, "
        "whether it passes through English when translating, and whether a steering vector built in English "
        "works in other languages.",
        "Each figure compares languages or layers; shuffled-label controls show what chance looks like, so a "
        "real effect must stand clearly above them.",
    ),
)
"""Every report kind the CLI writes (the `kind` of its index.json), in the order the guide shows them."""

_BY_KIND = {k.kind: k for k in REPORT_KINDS}

GENERIC_FIGURE = ("A figure saved by the experiment; its title says what is plotted, and the tables below hold the "
                  "same values. See the guide for the report's kind.")
"""Under a figure whose report neither captions it nor has a kind the guide knows."""

FEATURE_NOTES: dict[str, str] = {
    "stats": "Frequency: the share of all tokens on which this latent is on. Max and mean activation: how "
             "strongly it fires at most and on average when on.",
    "explanations": "Candidate descriptions of when this latent fires. Each is tested by a judge guessing from "
                    "the description alone where it fires: 1.0 is always right, 0.5 a coin flip.",
    "histogram": "How strongly this latent fires when it is on: each bar counts the tokens at that strength "
                 "(left: weak, right: strong). Hover a bar for its range and count.",
    "logits": "The tokens this latent makes the model more likely (promoted) or less likely (suppressed) to "
              "write next; larger numbers are stronger pushes.",
    "neighbours": "Other latents whose directions in the model are most alike (cosine: 1 the same, 0 "
                  "unrelated); they often fire on related ideas.",
    "meta": "Shared building blocks of latents, found by a second SAE on this SAE's dictionary: latents sharing "
            "one are related.",
    "top_examples": "The texts where this latent fires most strongly. Darker highlight means stronger; the number "
                    "on the left is the strongest value in the excerpt. Hover a token for its value.",
    "quantile_examples": "Texts sampled from every range of strength, highest first; each heading is the range as a "
                         "fraction of the strongest activation (0.00-0.25: up to a quarter of it). Check whether the "
                         "pattern of the top examples holds when the latent fires only a little.",
}
"""The sentence under each section of a feature page, by section."""


def report_guide(kind: str) -> KindGuide | None:
    """The guide entry of a report kind, or None for a kind the guide does not describe."""
    return _BY_KIND.get(kind)


def figure_sentence(kind: str, figure: FigureEntry) -> str:
    """The plain-language sentence under a report figure: its caption, else the kind's, else a generic one."""
    if figure.caption and figure.caption.strip():
        return figure.caption.strip()
    entry = report_guide(kind)
    return entry.figures if entry is not None else GENERIC_FIGURE
