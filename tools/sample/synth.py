"""Seeded synthetic survey exports shaped like the coaching-feedback study (see DOMAIN.md).

Everything here is invented for this project: schools, coaches, staff and answers. The output
mimics the study's data as collected: 43 schools, 6 external coaches, a 2020-21 year of 4
surveyed sessions exported from Google Forms and a 2023-24 year of 9 sessions exported from
Qualtrics, one export file per session, with the quirks real exports have (cp1252 saved by
Excel, a UTF-8 BOM, smart quotes, emoji, typos, "NA"-style answers, blank answers, repeated
submissions, names typed into free text).

    python -m tools.sample.synth --out data/sample [--answers 772] [--seed 2024] [--years 2]

`--years K` (benchmarks of a longer history) writes K consecutive school years ending in 2023-24
instead of the study's two (study_years; 2020-21 is among them from K = 4).

Pure Python (no Dagster); the same seed gives the same bytes on every run.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import io
import itertools
import math
import random
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

# --------------------------------------------------------------------------------------------
# People and places (all invented). No first or last name is an English or codebook word:
# redaction replaces every roster name as a whole word in any case.
# --------------------------------------------------------------------------------------------

COACHES = (
    "Marisol Quintero",
    "Dmitri Halvorsen",
    "Yolanda Achterberg",
    "Teodoro Nakashima",
    "Priyanka Szymanski",
    "Anselm Obuya",
)

STAFF = (  # (full name, role) -- school staff whose names get typed into answers
    ("Chidinma Okafor", "teacher"),
    ("Svetlana Brandvold", "principal"),
    ("Rashida Kowalczyk", "assistant principal"),
    ("Ignatius Delacroix", "teacher"),
    ("Oluwaseun Pettigrew", "instructional coach"),
    ("Leocadia Ferrante", "counselor"),
    ("Xiomara Castellanos", "teacher"),
    ("Bartholomew Nkemelu", "principal"),
    ("Ottilie Haverkamp", "teacher"),
    ("Kwabena Lindqvist", "instructional coach"),
    ("Marguerite Oyelaran", "assistant principal"),
    ("Evander Kozlowski", "teacher"),
    ("Zainab Hollingsworth", "principal"),
    ("Thaddeus Ramaswamy", "teacher"),
    ("Giedre Albrechtsen", "counselor"),
    ("Anneliese Tshabalala", "teacher"),
    ("Casimir Wojciechowski", "assistant principal"),
    ("Nkechi Adeyemi", "instructional coach"),
    ("Soledad Barraclough", "teacher"),
    ("Florentyna Iwasaki", "teacher"),
)

# Other respondents: their names only reach the identifying columns (e-mail, recipient).
RESPONDENT_FIRST = (
    "Adaeze", "Bogdana", "Catalina", "Dariusz", "Emeka", "Fenella", "Gulnara", "Henrike",
    "Ifeoma", "Jurgen", "Katarzyna", "Ludmila", "Mahliyo", "Nadezhda", "Obinna", "Paulina",
    "Radomir", "Siobhan", "Tatjana", "Ulrike", "Valentina", "Wojtek", "Ximena", "Yevgenia",
    "Zofia", "Anjali", "Benedek", "Cosima", "Dagny", "Eszter",
)
RESPONDENT_LAST = (
    "Abiodun", "Bergqvist", "Cieslak", "Dabrowski", "Ezeoke", "Fitzhugh", "Gyamfi", "Hakobyan",
    "Ilunga", "Jankowski", "Kaczmarek", "Lundqvist", "Mwangi", "Nwosu", "Oyelowo", "Przybylski",
    "Quaye", "Rautenbach", "Sokolova", "Takahashi", "Uzoma", "Vukovic", "Wieczorek", "Yamamoto",
    "Zielinski", "Agyeman", "Bialas", "Chukwu", "Dlamini", "Esposito",
)

SCHOOLS = (
    "Alderbrook Elementary", "Beaverkill Elementary", "Cedar Hollow Elementary",
    "Chestnut Ridge Elementary", "Cloverdale Elementary", "Driftwood Elementary",
    "Eastgate Elementary", "Elmhurst Primary", "Fernwood Elementary", "Foxglove Elementary",
    "Glenview Elementary", "Greenbriar Elementary", "Harborview Elementary",
    "Hawthorn Elementary", "Heron Pond Elementary", "Juniper Elementary", "Kestrel Elementary",
    "Lakeshore Elementary", "Larkspur Elementary", "Linden Avenue Elementary",
    "Meadowlark Elementary", "Millbrook Elementary", "Northfield Elementary",
    "Oak Knoll Elementary", "Orchard Street Elementary", "Pinecrest Elementary",
    "Quarry Hill Elementary", "Riverbend Elementary", "Sandstone Elementary",
    "Silver Maple Elementary", "Stonebridge Middle School", "Sycamore Middle School",
    "Tamarack Middle School", "Thornfield Middle School", "Upland Middle School",
    "Vinecrest Middle School", "Westbrook Middle School", "Whitewater Academy",
    "Willowbend High School", "Wintergreen High School", "Yarrow High School",
    "Bayside Early Childhood Center", "Ridgeline Career and Technical High School",
)

# Survey answer choices for "What is your role?" (respondent role -> weight)
ROLE_CHOICES = {
    "Teacher": 50, "Principal": 10, "Assistant Principal": 10, "Instructional Coach": 12,
    "Counselor": 6, "Other": 6,
}
ROSTER_ROLE_CHOICE = {
    "teacher": "Teacher", "principal": "Principal", "assistant principal": "Assistant Principal",
    "instructional coach": "Instructional Coach", "counselor": "Counselor",
}

EMAIL_DOMAIN = "district.example.org"

# --------------------------------------------------------------------------------------------
# Phrase banks. Templates take slots: {coach} (the respondent's coach, first name),
# {coach_s} (possessive), {colleague}, {colleague_s}, {goal}, {step}, {protocol}, {artifact},
# {meeting}. Themes echo the study's codebook without always using its literal keywords.
# --------------------------------------------------------------------------------------------

GOALS = (
    "literacy", "reading", "math", "mathematics", "ELA", "school culture", "academic culture",
    "attendance", "graduation rate", "writing", "chronic absenteeism", "9th grade credit",
)
STEPS = (
    "organizing for collaborative work", "building assessment literacy",
    "creating a data overview", "digging into student data", "examining instruction",
    "developing an action plan", "planning to assess progress", "acting and assessing",
    "our learner-centered problem", "our problem of practice", "step 3", "step 4", "step 6",
)
PROTOCOLS = (
    "the Compass Points protocol", "the ATLAS protocol", "the See-Think-Wonder protocol",
    "the \"I notice, I wonder\" protocol", "the Ladder of Inference", "the Chalk Talk",
    "the Tuning protocol", "the Data Wise protocol", "the \"Affinity Map\" protocol",
    "the Success Analysis protocol",
)
ARTIFACTS = (
    "action plan", "data overview", "learner-centered problem", "problem of practice",
    "priority question", "agenda", "data wall", "assessment calendar", "team charter",
    "progress monitoring tool",
)
MEETINGS = ("Zoom", "Google Meet", "Zoom", "Teams")  # 2020-21 sessions were held online

WORKED = {  # Q1 "What worked from today's coaching session?" -- theme -> templates
    "coaching_support": (
        "The coaching support was great.",
        "{coach} was so helpful in guiding our conversation.",
        "Having {coach} there to guide us kept us on track.",
        "Our coach supported us through {step}.",
        "{coach} helped us think through our {artifact}.",
        "The support from our coach made a big difference.",
        "I appreciated the guidance and support during {step}.",
        "{coach_s} feedback on our {artifact} was really helpful.",
        "Coaching helped us refocus on what matters for our students.",
        "Our coach gave us clear next steps.",
        "{coach} supported our team when we got stuck.",
        "Great support today!",
        "The coach modeled how to facilitate the protocol.",
        "{coach} asked questions that pushed our thinking.",
        "I liked how {coach} guided us without giving us the answers.",
        "Coach was very supportive and helped us get unstuck on {step}.",
        "The coaching was supportive and to the point.",
        "It's helpful when {coach} asks the hard questions.",
        "{coach_s} \"what do you notice?\" questions got everyone talking.",
    ),
    "follow_process": (
        "Following the Data Wise process kept us focused.",
        "We followed the protocol step by step.",
        "Using {protocol} helped us stay on task.",
        "Going through the steps of Data Wise made it clear where we are.",
        "Sticking to the process helped us move forward.",
        "The structure of the protocol worked well.",
        "We were able to move on to {step}.",
        "Following the process helped us narrow down our {artifact}.",
        "Working through {step} together.",
        "The protocols kept the conversation productive.",
        "Using {protocol} was a great way to look at the data.",
        "Following the steps in order so nobody jumped to solutions.",
        "I liked that we followed the process instead of just talking.",
        "The \"parking lot\" kept us from going off track.",
    ),
    "collaboration": (
        "Collaborating with my team.",
        "Our team collaborated on the {artifact}.",
        "The collaboration between grade levels was great.",
        "Working together as a team on {goal}.",
        "Everyone on the team shared ideas.",
        "We had a great collaborative discussion.",
        "Hearing from all team members.",
        "Time to collaborate with colleagues from other departments.",
        "Team discussion about our {goal} data.",
        "The whole team was engaged and we worked together well.",
        "Collaboration with {colleague} and the 4th grade team.",
        "Teamwork! Everyone had a voice.",
        "Being able to talk with teachers from other grades.",
        "Our team really came together today.",
        "Everybody's voice was heard.",
    ),
    "data_analysis": (
        "Looking at our {goal} data together.",
        "Analyzing the data helped us see patterns we had missed.",
        "Digging into student work samples.",
        "The data analysis on {goal} was eye-opening.",
        "We looked closely at our benchmark results in {goal}.",
        "Thanks to {colleague_s} data slides we could see the trends.",
        "{colleague_s} data summary was really useful.",
        "Breaking the {goal} data down by subgroup.",
        "Seeing the data on the wall made it real.",
        "We analyzed the last assessment and found a clear pattern.",
        "We're finally seeing the \"big picture\" in our {goal} data.",
    ),
    "time": (
        "Having time set aside to plan.",
        "The time allocated to work on our {artifact} was helpful.",
        "Having dedicated time for the team to meet.",
        "We had enough time to actually finish a step.",
        "Protected time to look at {goal} data.",
    ),
    "norms": (
        "Revisiting our norms at the start.",
        "Setting norms helped the meeting run smoothly.",
        "We reviewed our team norms and everyone stuck to them.",
        "The norms made it safe to disagree.",
    ),
    "planning": (
        "Planning for next year.",
        "We started planning our next steps for the spring.",
        "Mapping out our plan for the rest of the year.",
        "We will continue this work next year.",
        "We plan to continue using the protocols in our grade-level meetings.",
        "Thinking about how to keep this going after the partnership ends.",
        "Aligning our {artifact} with the school improvement plan.",
        "Setting goals for {goal} for next year.",
    ),
    "ownership": (
        "We decided on our {artifact}.",
        "We created an action plan.",
        "We developed a timeline for our next steps.",
        "Our team took ownership of the meeting.",
        "We planned our next data cycle ourselves.",
        "I want this to succeed and today felt like progress.",
        "We set expectations for each team member.",
        "Everyone is accountable for a piece of the plan.",
        "{colleague} facilitated and the coach just supported, which was great.",
        "We ran the protocol on our own this time.",
        "We made the decision to focus on {goal}.",
        "Building our own capacity to lead this work.",
    ),
    "spread": (
        "We talked about using the protocol in other meetings.",
        "Sharing the process with our grade-level teams.",
        "We tried it with a new team and it worked.",
        "Other teachers started asking us about the process.",
        "Thinking about how to bring this to our department meetings.",
    ),
    "depth": (
        "I have changed my mind about how we use data.",
        "I used to think data meetings were a waste of time and now I think they are useful.",
        "This has changed my practice.",
        "A new approach to looking at {goal}.",
        "We stayed focused on one problem.",
        "It made me rethink how I teach {goal}.",
        "We are starting to believe all our students can meet the standard.",
    ),
    "personal_regard": (
        "{coach} is so friendly and approachable.",
        "Our coach listens to everyone.",
        "{coach} always listens and makes us feel heard.",
        "There was a real sense of community.",
        "A welcoming environment.",
        "{coach} goes above and beyond for our school.",
        "The positive tone {coach} sets every time.",
        "I felt supported and welcome.",
        "Warm and personable as always.",
        "{coach} is very open to feedback.",
        "I love how {coach} reaches out between sessions.",
        "It feels like a community when we meet.",
        "{coach} makes everyone feel comfortable sharing.",
        "Friendly atmosphere, nobody felt judged.",
    ),
    "competence": (
        "{coach} is very knowledgeable about Data Wise.",
        "Very effective session.",
        "We accomplished our tasks.",
        "We got so much done!",
        "We accomplished everything on the agenda.",
        "Efficient use of our time.",
        "{coach} really knows the process.",
        "Productive and efficient.",
        "We finished our {artifact}.",
        "Our coach is skilled at keeping us moving.",
        "{coach} knows so much about using data to improve {goal}.",
        "We completed the {artifact} we started last month.",
        "Got a lot accomplished in an hour.",
        "We didn't get off track once and finished the {artifact}.",
    ),
    "remote": (  # 2020-21 only: sessions were held online
        "The breakout rooms on {meeting} worked well.",
        "Even on {meeting} we were able to get a lot done.",
        "Using the shared Google Doc during the meeting.",
        "The Jamboard activity was engaging.",
    ),
    "general": (
        "Great session today.",
        "Everything was helpful.",
        "This was one of our best sessions.",
        "Really productive meeting.",
        "The pacing was good.",
        "Clear agenda and clear outcomes.",
    ),
}

IMPROVE = {  # Q2 "In what ways can we improve today's coaching session?"
    "time": (
        "We ran out of time.",
        "Need more time.",
        "Not enough time to finish.",
        "More time to work on the {artifact}.",
        "The session felt rushed.",
        "An hour is not enough; we need more time to get through {step}.",
        "Start on time so we can finish.",
        "Maybe longer sessions.",
        "We needed more time for discussion.",
        "Give us more time to dig into the data.",
        "We always run out of time before the action steps.",
        "More time! We were just getting started.",
        "Too much to cover in 60 minutes.",
        "We didn't have enough time to finish the {artifact}.",
        "I'd like more time for the \"so what\" part of the protocol.",
    ),
    "coaching_support": (
        "More support between sessions.",
        "It would help to have {coach} check in with us more often.",
        "More coaching support with {step}.",
        "More examples of what a strong {artifact} looks like.",
        "Would like more guidance on {step}.",
        "Could use more support analyzing {goal} data.",
        "Maybe {coach} could send a summary after each session.",
        "We're not sure what the next step is; a checklist would help.",
    ),
    "process": (
        "Clearer directions for the protocol.",
        "Spend less time on the protocol and more on action steps.",
        "Send the agenda ahead of time.",
        "Share the slides before the meeting.",
        "Have the data ready before the session.",
        "Make sure everyone has access to the data beforehand.",
        "Less time reviewing and more time working.",
        "It's hard to stay focused at the end of the day; maybe meet earlier.",
        "Don't rush the last step.",
        "We keep repeating the same step; move on to {step}.",
    ),
    "team": (
        "More teachers should be at the table.",
        "Get all team members to attend.",
        "Include the grade-level teams.",
        "Less talking from administration, more from teachers.",
        "Hold each other accountable to the action steps.",
        "Fewer interruptions.",
        "Invite {colleague} next time since they have the data.",
        "Make sure the same people come every month.",
    ),
    "accomplish": (
        "We did not accomplish our tasks for today.",
        "We did not get to finish everything on the agenda.",
        "Stay focused so we can accomplish more.",
        "Set a clear goal for what we need to get done each time.",
    ),
    "remote": (  # 2020-21 only
        "Meet in person instead of on {meeting}.",
        "Zoom fatigue is real; cameras on would help.",
        "The breakout rooms did not work well.",
        "Audio problems made it hard to hear.",
        "Fewer slides, it is hard to follow on a screen.",
    ),
    "positive": (
        "Nothing, it was great!",
        "Keep doing what you're doing.",
        "No suggestions, this was helpful.",
        "I can't think of anything.",
        "Everything was great.",
        "Not sure, it was a good session.",
        "Keep it up, {coach}!",
    ),
}

# Theme weights by school year: 2020-21 leans on the coach; 2023-24 on ownership and sustaining.
WORKED_WEIGHTS = {
    "2020-21": {
        "coaching_support": 24, "follow_process": 20, "collaboration": 18, "data_analysis": 9,
        "time": 3, "norms": 4, "planning": 3, "ownership": 3, "spread": 1, "depth": 3,
        "personal_regard": 13, "competence": 9, "remote": 6, "general": 5,
    },
    "2023-24": {
        "coaching_support": 17, "follow_process": 20, "collaboration": 20, "data_analysis": 9,
        "time": 4, "norms": 4, "planning": 9, "ownership": 10, "spread": 4, "depth": 5,
        "personal_regard": 14, "competence": 10, "remote": 0, "general": 5,
    },
}
IMPROVE_WEIGHTS = {
    "2020-21": {"time": 28, "coaching_support": 18, "process": 16, "team": 9, "accomplish": 7,
                "remote": 14, "positive": 14},
    "2023-24": {"time": 30, "coaching_support": 14, "process": 16, "team": 12, "accomplish": 9,
                "remote": 0, "positive": 17},
}

ONE_WORD = {
    "worked": ("Collaboration", "Collaboration!", "Planning", "Everything", "Everything!",
               "Data", "Teamwork", "Support", "Norms", "Protocols", "Discussion", "Focus",
               "{coach}!", "Helpful", "Organization", "collaboration", "Structure"),
    "improve": ("Time", "Time.", "More time", "time", "Timing", "Longer", "Nothing!",
                "Agenda", "Attendance"),
}
NO_CODE = {  # short answers that match no code
    "worked": ("Good session.", "Thanks!", "Great meeting.", "All good", "Fine.", "ok",
               "Thank you!", "It was good.", "Good", "Liked it.", "Everything, thanks"),
    "improve": ("Good session.", "Thanks!", "ok", "All good.", "Fine as is", "It was fine.",
                "Good"),
}
NON_SUBSTANTIVE = ("NA", "N/A", "n/a", "none", "None.", "-", "nothing", "Nothing", "na", "NA.",
                   "No", "...", "none at this time")
CLOSERS = ("Thank you!", "Thanks, {coach}!", "Thanks!", "Great session!", "Keep it up!",
           "Looking forward to next month.", "thank you {coach}")
EMOJI = ("😊", "👍", "🙂", "🙌", "👏")
MISSPELLINGS = {
    "definitely": "definately", "really": "realy", "session": "sesion", "because": "becuase",
    "collaboration": "collabration", "helpful": "helpfull", "together": "togather",
    "their": "thier", "process": "proccess", "through": "thru", "analyzing": "analyising",
    "accomplished": "acomplished", "everyone": "every one", "beginning": "begining",
    "protocol": "protocal", "different": "diffrent", "knowledgeable": "knowledgable",
}

# Answer kinds and their weights per question (multi-sentence kinds compose theme sentences).
KINDS = ("nonsub", "nocode", "oneword", "s1", "s2", "s3", "long")
KIND_WEIGHTS = {
    "worked": (2.5, 5, 8, 42, 27, 12, 3.5),
    "improve": (9, 3, 6, 48, 23, 8, 3),
}
SENTENCES = {"s1": 1, "s2": 2, "s3": 3}

# Per-answer quirk rates
P_TYPO = 0.05
P_SMART = 0.5          # of answers with a quote or apostrophe
P_EMOJI = 0.04
P_LOWER = 0.05
P_NO_PERIOD = 0.12
P_MULTILINE = 0.25     # of multi-sentence answers
P_CLOSER = 0.1
P_COACH_FULL = 0.08    # coach named by full name rather than first
P_NAME_LOWER = 0.1

# --------------------------------------------------------------------------------------------
# Study layout: years, sessions, per-file quirks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class YearSpec:
    school_year: str
    source: str
    session_weeks: tuple[date, ...]   # Monday opening each session's coaching cycle
    share: float                      # share of all answered responses


YEARS = (
    YearSpec("2020-21", "google-forms",
             (date(2020, 11, 2), date(2021, 1, 11), date(2021, 3, 8), date(2021, 5, 3)), 0.4),
    YearSpec("2023-24", "qualtrics",
             (date(2023, 9, 18), date(2023, 10, 16), date(2023, 11, 6), date(2023, 12, 4),
              date(2024, 1, 22), date(2024, 2, 26), date(2024, 3, 18), date(2024, 4, 15),
              date(2024, 5, 13)), 0.6),
)


def study_years(n_years: int = 2) -> tuple[YearSpec, ...]:
    """The study's two years (YEARS), or `n_years` consecutive school years ending in 2023-24,
    for benchmarks of a longer history: 2020-21 (from n_years = 4) and 2023-24 as in the study,
    every other year a 9-session Qualtrics year like 2023-24 with its sessions on the same
    weeks of its own year. Each year's share of the answers follows its number of sessions, so every session
    holds about as many answers."""
    if n_years == len(YEARS):
        return YEARS
    if n_years < 1:
        raise ValueError("n_years must be at least 1")
    study = {y.school_year: y for y in YEARS}
    latest = YEARS[-1]
    first_start = int(latest.school_year[:4]) - n_years + 1
    specs = []
    for start in range(first_start, first_start + n_years):
        label = f"{start}-{(start + 1) % 100:02d}"
        shift = int(latest.school_year[:4]) - start
        weeks = study[label].session_weeks if label in study else tuple(
            _monday(d.replace(year=d.year - shift)) for d in latest.session_weeks)
        source = study[label].source if label in study else latest.source
        specs.append(YearSpec(label, source, weeks, 0.0))
    sessions = sum(len(s.session_weeks) for s in specs)
    return tuple(YearSpec(s.school_year, s.source, s.session_weeks,
                          len(s.session_weeks) / sessions) for s in specs)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


ENCODINGS = {("2020-21", 2): "cp1252", ("2020-21", 3): "utf-8-sig"}  # else utf-8
QUIRK_NOTES = {
    "cp1252": "saved by Excel as cp1252 (Windows-1252): no emoji, smart quotes as bytes 0x91-0x94",
    "utf-8-sig": "UTF-8 with a byte-order mark (EF BB BF)",
    "utf-8": "UTF-8, no BOM",
}
EMAIL_SESSIONS_FROM = 5   # 2023-24: from session 5 the survey went out by e-mail (recipients)

GOOGLE_HEADER = (
    "Timestamp", "Email Address", "Which school are you from?", "Who was your coach today?",
    "What is your role?", "What worked from today's coaching session?",
    "In what ways can we improve today's coaching session?",
)
_TZ = ',"timeZone":"America/New_York"'
QUALTRICS_COLUMNS = (  # (column id, question text row, ImportId)
    ("StartDate", "Start Date", '{"ImportId":"startDate"' + _TZ + "}"),
    ("EndDate", "End Date", '{"ImportId":"endDate"' + _TZ + "}"),
    ("Status", "Response Type", '{"ImportId":"status"}'),
    ("IPAddress", "IP Address", '{"ImportId":"ipAddress"}'),
    ("Progress", "Progress", '{"ImportId":"progress"}'),
    ("Duration (in seconds)", "Duration (in seconds)", '{"ImportId":"duration"}'),
    ("Finished", "Finished", '{"ImportId":"finished"}'),
    ("RecordedDate", "Recorded Date", '{"ImportId":"recordedDate"' + _TZ + "}"),
    ("ResponseId", "Response ID", '{"ImportId":"_recordId"}'),
    ("RecipientLastName", "Recipient Last Name", '{"ImportId":"recipientLastName"}'),
    ("RecipientFirstName", "Recipient First Name", '{"ImportId":"recipientFirstName"}'),
    ("RecipientEmail", "Recipient Email", '{"ImportId":"recipientEmail"}'),
    ("ExternalReference", "External Data Reference", '{"ImportId":"externalDataReference"}'),
    ("LocationLatitude", "Location Latitude", '{"ImportId":"locationLatitude"}'),
    ("LocationLongitude", "Location Longitude", '{"ImportId":"locationLongitude"}'),
    ("DistributionChannel", "Distribution Channel", '{"ImportId":"distributionChannel"}'),
    ("UserLanguage", "User Language", '{"ImportId":"userLanguage"}'),
    ("Q_School", "Which school are you from?", '{"ImportId":"QID3"}'),
    ("Q_Coach", "Who was your coach today?", '{"ImportId":"QID4"}'),
    ("Q_Role", "What is your role?", '{"ImportId":"QID5"}'),
    ("Q1", "What worked from today's coaching session?", '{"ImportId":"QID1_TEXT"}'),
    ("Q2", "In what ways can we improve today's coaching session?", '{"ImportId":"QID2_TEXT"}'),
    ("SessionNumber", "SessionNumber", '{"ImportId":"SessionNumber"}'),
)

MAPPING_YAML = {
    "google-forms": """\
# synthetic sample: column mapping for this year's exports
school_year: "{year}"
source: google-forms          # reader kind: google-forms | qualtrics | qualtrics-legacy | microsoft-forms | surveymonkey | csv | xlsx
files: "session-*.csv"        # glob in this folder
columns:                      # canonical field -> export column (column id or header/question text)
  submitted_at: Timestamp
  response_id: null           # none in Google Forms
  school: Which school are you from?
  coach: Who was your coach today?
  role: What is your role?
  session: null               # null -> session number from the file name (session-NN)
  worked: What worked from today's coaching session?
  improve: In what ways can we improve today's coaching session?
identifying: [Email Address]  # columns that never leave the raw layer
timestamp_format: "%m/%d/%Y %H:%M:%S"
""",
    "qualtrics": """\
# synthetic sample: column mapping for this year's exports
school_year: "{year}"
source: qualtrics             # reader kind: google-forms | qualtrics | qualtrics-legacy | microsoft-forms | surveymonkey | csv | xlsx
files: "session-*.csv"        # glob in this folder
columns:                      # canonical field -> export column (column id or header/question text)
  submitted_at: RecordedDate
  response_id: ResponseId
  school: Q_School
  coach: Q_Coach
  role: Q_Role
  session: SessionNumber      # embedded data set on the survey link
  worked: Q1
  improve: Q2
identifying: [IPAddress, RecipientLastName, RecipientFirstName, RecipientEmail, LocationLatitude, LocationLongitude, ExternalReference]  # columns that never leave the raw layer
timestamp_format: "%Y-%m-%d %H:%M:%S"
""",
}

# --------------------------------------------------------------------------------------------
# Answer texts
# --------------------------------------------------------------------------------------------

ROSTER_NAME_WORDS = frozenset(
    w.casefold() for name in COACHES + tuple(n for n, _ in STAFF) for w in name.split()
)


class _Slots(dict):
    """Template slot values, drawn only when a template asks for them."""

    def __init__(self, rng: random.Random, ctx: _Context):
        super().__init__()
        self.rng = rng
        self.ctx = ctx

    def __missing__(self, key: str) -> str:
        rng, ctx = self.rng, self.ctx
        if key.endswith("_s"):  # possessive of the same rendering within one answer
            value = self[key[:-2]] + "'s"
        elif key == "coach":
            value = _render_name(rng, ctx.coach, full_ok=True)
        elif key == "colleague":
            value = _render_name(rng, rng.choice(ctx.colleagues), full_ok=False)
        elif key == "goal":
            value = rng.choice(GOALS)
        elif key == "step":
            value = rng.choice(STEPS)
        elif key == "protocol":
            value = rng.choice(PROTOCOLS)
        elif key == "artifact":
            value = rng.choice(ARTIFACTS)
        elif key == "meeting":
            value = rng.choice(MEETINGS)
        else:
            raise KeyError(key)
        self[key] = value
        return value


@dataclass(frozen=True)
class _Context:
    year: str
    coach: str                       # full name of the respondent's coach
    colleagues: tuple[str, ...]      # roster staff names a respondent may mention
    allow_emoji: bool = True


def _render_name(rng: random.Random, full_name: str, full_ok: bool) -> str:
    first, last = full_name.split(maxsplit=1)
    r = rng.random()
    if full_ok:
        name = full_name if r < P_COACH_FULL else first
    else:
        name = first if r < 0.55 else last
    return name.lower() if rng.random() < P_NAME_LOWER else name


def _fill(template: str, slots: _Slots) -> str:
    return template.format_map(slots) if "{" in template else template


class _Weighted:
    """Weighted choice with precomputed cumulative weights (fast for millions of draws)."""

    def __init__(self, weights: dict[str, float]):
        self.items = [k for k, w in weights.items() if w]
        self.cum = list(itertools.accumulate(weights[k] for k in self.items))

    def pick(self, rng: random.Random) -> str:
        return self.items[bisect.bisect(self.cum, rng.random() * self.cum[-1])]


_KIND_PICKER = {q: _Weighted(dict(zip(KINDS, w, strict=True))) for q, w in KIND_WEIGHTS.items()}
_THEME_PICKER = {  # (question, year, single sentence?) -> picker; "positive" only stands alone
    (q, year, single): _Weighted({t: w for t, w in weights[year].items()
                                  if single or t != "positive"})
    for q, weights in (("worked", WORKED_WEIGHTS), ("improve", IMPROVE_WEIGHTS))
    for year in weights
    for single in (True, False)
}


def _pick_themes(rng: random.Random, picker: _Weighted, k: int) -> list[str]:
    """k themes, distinct while there are enough."""
    picked: list[str] = []
    while len(picked) < k:
        theme = picker.pick(rng)
        if theme not in picked or len(picked) >= len(picker.items):
            picked.append(theme)
    return picked


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    known = [i for i, w in enumerate(words) if w.lower().strip(".,!?") in MISSPELLINGS]
    if known:
        i = rng.choice(known)
        bare = words[i].strip(".,!?")
        fixed = MISSPELLINGS[bare.lower()]
        if bare[:1].isupper():
            fixed = fixed.capitalize()
        words[i] = words[i].replace(bare, fixed)
        return " ".join(words)
    candidates = [i for i, w in enumerate(words)
                  if len(w) >= 5 and w.isalpha() and w.casefold() not in ROSTER_NAME_WORDS]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    op = rng.randrange(3)
    if op == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]      # swap two letters
    elif op == 1:
        w = w[:j] + w[j + 1:]                          # drop a letter
    else:
        w = w[:j] + w[j] + w[j:]                       # double a letter
    words[i] = w
    return " ".join(words)


def _smart_quotes(text: str) -> str:
    out, open_double = [], True
    for ch in text:
        if ch == "'":
            out.append("\u2019")
        elif ch == '"':
            out.append("\u201c" if open_double else "\u201d")
            open_double = not open_double
        else:
            out.append(ch)
    return "".join(out)


def _compose(rng: random.Random, question: str, ctx: _Context, slots: _Slots) -> str:
    kind = _KIND_PICKER[question].pick(rng)
    if kind == "nonsub":
        return rng.choice(NON_SUBSTANTIVE)
    if kind == "nocode":
        return rng.choice(NO_CODE[question])
    if kind == "oneword":
        return _fill(rng.choice(ONE_WORD[question]), slots)
    bank = WORKED if question == "worked" else IMPROVE
    k = SENTENCES.get(kind) or rng.randint(4, 7)
    # years other than the study's two (study_years) weigh themes as 2023-24 does
    picker = _THEME_PICKER.get((question, ctx.year, k == 1)) \
        or _THEME_PICKER[question, YEARS[-1].school_year, k == 1]
    sentences = [_fill(rng.choice(bank[t]), slots) for t in _pick_themes(rng, picker, k)]
    if question == "worked" and rng.random() < P_CLOSER:
        sentences.append(_fill(rng.choice(CLOSERS), slots))
    if len(sentences) > 1 and rng.random() < P_MULTILINE:
        if rng.random() < 0.4:
            return "\n".join("- " + s for s in sentences)
        return "\n".join(sentences)
    return " ".join(sentences)


def _answer(rng: random.Random, question: str, ctx: _Context) -> str:
    """One realistic answer to Q1 ("worked") or Q2 ("improve"); never blank."""
    text = _compose(rng, question, ctx, _Slots(rng, ctx))
    if len(text) > 12:
        if rng.random() < P_LOWER:
            text = text.lower()
        if rng.random() < P_NO_PERIOD and text.endswith("."):
            text = text[:-1]
        if rng.random() < P_TYPO:
            text = _typo(rng, text)
    if ("'" in text or '"' in text) and rng.random() < P_SMART:
        text = _smart_quotes(text)
    if ctx.allow_emoji and rng.random() < P_EMOJI:
        text = text + rng.choice(("", " ")) + rng.choice(EMOJI)
    return text


def synthetic_answer_texts(n: int, seed: int = 0) -> list[str]:
    """n answer texts from the sample's phrase banks (60% Q1, 40% Q2, both years), for benchmarks.

    Deterministic per seed. 1,000,000 texts take about 10 seconds.
    """
    rng = random.Random(seed)
    staff = tuple(name for name, _ in STAFF)
    contexts = [_Context(y.school_year, coach, staff) for y in YEARS for coach in COACHES]
    ctx_idx = rng.choices(range(len(contexts)), k=n)
    questions = rng.choices(("worked", "improve"), (6, 4), k=n)
    return [_answer(rng, q, contexts[c]) for q, c in zip(questions, ctx_idx, strict=True)]


# --------------------------------------------------------------------------------------------
# Respondents, submissions, timestamps
# --------------------------------------------------------------------------------------------


@dataclass
class _Person:
    first: str
    last: str
    email: str
    role: str            # survey answer choice
    school: str
    staff_id: str


@dataclass
class _Submission:
    session: int
    school: str
    coach: str
    person: _Person
    worked: str
    improve: str
    when: datetime
    duration: int = 0
    response_id: str = ""
    ip: str = ""
    lat: str = ""
    lon: str = ""
    duplicate: bool = False


@dataclass
class _Year:
    spec: YearSpec
    coach_of: dict[str, str]
    submissions: dict[int, list[_Submission]] = field(default_factory=dict)


def _build_people(rng: random.Random, per_school: int) -> dict[str, list[_Person]]:
    """Each school's leadership team; 20 schools include one roster staff member."""
    schools = list(SCHOOLS)
    staff_schools = rng.sample(schools, len(STAFF))
    people: dict[str, list[_Person]] = {s: [] for s in schools}
    for (name, role), school in zip(STAFF, staff_schools, strict=True):
        first, last = name.split(maxsplit=1)
        people[school].append(_person(rng, first, last, ROSTER_ROLE_CHOICE[role], school, 0))
    roles = list(ROLE_CHOICES)
    role_w = list(ROLE_CHOICES.values())
    serial = 1
    for school in schools:
        size = per_school + rng.randint(-1, 2)
        while len(people[school]) < max(size, 1):
            person = _person(rng, rng.choice(RESPONDENT_FIRST), rng.choice(RESPONDENT_LAST),
                             rng.choices(roles, role_w)[0], school, serial)
            people[school].append(person)
            serial += 1
    return people


def _person(rng: random.Random, first: str, last: str, role: str, school: str,
            serial: int) -> _Person:
    local = f"{first[0]}{last}".lower() + (str(serial) if serial else "")
    staff_id = f"EMP{rng.randrange(10000, 99999)}"
    return _Person(first, last, f"{local}@{EMAIL_DOMAIN}", role, school, staff_id)


def _assign_coaches(rng: random.Random, previous: dict[str, str] | None) -> dict[str, str]:
    """School -> coach; about 7 schools per coach, a few reassigned between years."""
    if previous is None:
        schools = list(SCHOOLS)
        rng.shuffle(schools)
        return {s: COACHES[i % len(COACHES)] for i, s in enumerate(schools)}
    moved = dict(previous)
    for school in rng.sample(sorted(previous), 8):
        moved[school] = rng.choice([c for c in COACHES if c != previous[school]])
    return moved


def _answer_patterns(rng: random.Random, target: int) -> list[tuple[bool, bool]]:
    """(answered Q1, answered Q2) per submission, totalling exactly `target` answers."""
    patterns: list[tuple[bool, bool]] = []
    remaining = target
    while remaining > 0:
        r = rng.random()
        pattern = (True, True) if r < 0.45 else (True, False) if r < 0.85 else (False, True)
        if remaining == 1:
            pattern = (True, False)
        patterns.append(pattern)
        remaining -= pattern[0] + pattern[1]
    return patterns


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    """Split `total` into `parts` positive-ish counts with mild random variation."""
    weights = [rng.uniform(0.75, 1.25) for _ in range(parts)]
    raw = [total * w / sum(weights) for w in weights]
    counts = [math.floor(x) for x in raw]
    order = sorted(range(parts), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _business_day(start: date, offset: int) -> date:
    day = start
    while offset > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            offset -= 1
    return day


def _plan_year(rng: random.Random, spec: YearSpec, target: int, coach_of: dict[str, str],
               people: dict[str, list[_Person]], n_blank: int) -> _Year:
    year = _Year(spec, coach_of)
    patterns = _answer_patterns(rng, target) + [(False, False)] * n_blank
    rng.shuffle(patterns)
    counts = _split(rng, len(patterns), len(spec.session_weeks))
    schools = list(SCHOOLS)
    school_weight = {s: rng.uniform(0.5, 1.5) for s in schools}
    slot = {s: rng.randrange(0, 12) for s in schools}            # business day in the cycle
    ends = {s: rng.randrange(15 * 60, 16 * 60 + 45, 15) for s in schools}  # meeting end (min)
    cursor = 0
    for session, (week, count) in enumerate(zip(spec.session_weeks, counts, strict=True), 1):
        rng.shuffle(schools)
        picks = schools[:count] + rng.choices(schools, [school_weight[s] for s in schools],
                                              k=max(0, count - len(schools)))
        seen: dict[str, int] = {}
        subs = []
        for school in picks:
            team = people[school]
            k = seen.get(school, 0)
            seen[school] = k + 1
            person = team[k % len(team)] if k else rng.choice(team)
            end = datetime.combine(_business_day(week, slot[school]), datetime.min.time())
            delay = rng.expovariate(1 / 240) if rng.random() > 0.05 else rng.uniform(3600, 20000)
            when = end + timedelta(minutes=ends[school], seconds=int(delay) + 20)
            q1, q2 = patterns[cursor]
            cursor += 1
            subs.append(_Submission(session, school, coach_of[school], person,
                                    "y" if q1 else "", "y" if q2 else "", when))
        subs.sort(key=lambda s: s.when)
        year.submissions[session] = subs
    return year


def _fill_answers(rng: random.Random, year: _Year, colleagues: dict[str, tuple[str, ...]]) -> None:
    yr = year.spec.school_year
    for session, subs in year.submissions.items():
        allow_emoji = ENCODINGS.get((yr, session), "utf-8") != "cp1252"
        for sub in subs:
            ctx = _Context(yr, sub.coach, colleagues[sub.school], allow_emoji)
            sub.worked = _answer(rng, "worked", ctx) if sub.worked else ""
            sub.improve = _answer(rng, "improve", ctx) if sub.improve else ""


def _add_whitespace_blanks(rng: random.Random, year: _Year, k: int) -> None:
    """A few unanswered cells hold only a space (someone hit the space bar): still blank."""
    cells = [(s, q) for subs in year.submissions.values() for s in subs
             for q in ("worked", "improve") if not getattr(s, q)]
    for sub, q in rng.sample(cells, min(k, len(cells))):
        setattr(sub, q, " ")


def _add_duplicates(rng: random.Random, year: _Year, k: int) -> None:
    """Repeat k answered submissions as identical rows right after the original."""
    answered = [(n, i) for n, subs in year.submissions.items() for i, s in enumerate(subs)
                if s.worked.strip() or s.improve.strip()]
    for session, index in sorted(rng.sample(answered, min(k, len(answered))), reverse=True):
        subs = year.submissions[session]
        copy = _Submission(**{**subs[index].__dict__, "duplicate": True})
        subs.insert(index + 1, copy)


def _colleagues(people: dict[str, list[_Person]]) -> dict[str, tuple[str, ...]]:
    """Roster staff a respondent at each school may name: their own school's, else anyone."""
    roster = {name for name, _ in STAFF}
    everyone = tuple(name for name, _ in STAFF)
    out = {}
    for school, team in people.items():
        own = tuple(f"{p.first} {p.last}" for p in team if f"{p.first} {p.last}" in roster)
        out[school] = own or everyone
    return out


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _google_timestamp(when: datetime) -> str:
    return f"{when.month}/{when.day}/{when.year} {when.hour}:{when.minute:02d}:{when.second:02d}"


def _qualtrics_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _csv_bytes(rows: Iterable[Iterable[str]], encoding: str) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode(encoding)


def _google_rows(subs: list[_Submission]) -> list[list[str]]:
    rows = [list(GOOGLE_HEADER)]
    for s in subs:
        rows.append([_google_timestamp(s.when), s.person.email, s.school, s.coach,
                     s.person.role, s.worked, s.improve])
    return rows


_ID_CHARS = string.ascii_letters + string.digits


def _qualtrics_details(rng: random.Random, year: _Year) -> None:
    """Response ids, durations, IP addresses and locations (duplicates copy the original)."""
    used: set[str] = set()
    school_ip = {s: f"{rng.choice(('192.0.2', '198.51.100', '203.0.113'))}.{rng.randrange(2, 250)}"
                 for s in SCHOOLS}
    school_loc = {s: (43.16 + rng.uniform(-0.08, 0.08), -77.61 + rng.uniform(-0.1, 0.1))
                  for s in SCHOOLS}
    for subs in year.submissions.values():
        for s in subs:
            if s.duplicate:
                continue
            while not s.response_id or s.response_id in used:
                s.response_id = "R_" + "".join(rng.choices(_ID_CHARS, k=15))
            used.add(s.response_id)
            s.duration = int(25 + rng.lognormvariate(4.3, 0.7))
            home = rng.random() < 0.15
            s.ip = (f"{rng.choice(('198.51.100', '203.0.113'))}.{rng.randrange(2, 250)}"
                    if home else school_ip[s.school])
            lat, lon = school_loc[s.school]
            if home:
                lat, lon = lat + rng.uniform(-0.1, 0.1), lon + rng.uniform(-0.1, 0.1)
            s.lat, s.lon = f"{lat:.10f}", f"{lon:.10f}"
    for subs in year.submissions.values():  # duplicates: same row twice
        for i, s in enumerate(subs):
            if s.duplicate:
                original = subs[i - 1]
                for name in ("response_id", "duration", "ip", "lat", "lon"):
                    setattr(s, name, getattr(original, name))


def _qualtrics_rows(subs: list[_Submission], session: int) -> list[list[str]]:
    rows = [[c[0] for c in QUALTRICS_COLUMNS], [c[1] for c in QUALTRICS_COLUMNS],
            [c[2] for c in QUALTRICS_COLUMNS]]
    by_email = session >= EMAIL_SESSIONS_FROM
    for s in subs:
        p = s.person
        start = s.when - timedelta(seconds=s.duration)
        rows.append([
            _qualtrics_time(start), _qualtrics_time(s.when), "IP Address", s.ip, "100",
            str(s.duration), "True", _qualtrics_time(s.when), s.response_id,
            p.last if by_email else "", p.first if by_email else "",
            p.email if by_email else "", p.staff_id if by_email else "",
            s.lat, s.lon, "email" if by_email else "anonymous", "EN",
            s.school, s.coach, p.role, s.worked, s.improve, str(session),
        ])
    return rows


# --------------------------------------------------------------------------------------------
# Counting (from the written rows, as a reader would) and the README
# --------------------------------------------------------------------------------------------


def _file_counts(subs: list[_Submission]) -> dict:
    distinct = [s for s in subs if not s.duplicate]
    return {
        "rows": len(subs),
        "duplicates": len(subs) - len(distinct),
        "blank_rows": sum(1 for s in distinct if not s.worked.strip() and not s.improve.strip()),
        "worked": sum(1 for s in distinct if s.worked.strip()),
        "improve": sum(1 for s in distinct if s.improve.strip()),
        "schools": len({s.school for s in subs}),
    }


def _command(n_answers: int, seed: int, n_years: int = len(YEARS)) -> str:
    years = f" --years {n_years}" if n_years != len(YEARS) else ""
    return (f"python -m tools.sample.synth --out data/sample --answers {n_answers} "
            f"--seed {seed}{years}")


def _readme(counts: dict) -> str:
    lines = [
        "# data/sample — SYNTHETIC survey exports",
        "",
        "**Everything in this folder is synthetic.** It was generated for this project by",
        "`tools/sample/synth.py`; no real school, person or answer is in it. It is shaped like",
        "the study in `DOMAIN.md` (43 schools, 6 external coaches, 4 surveyed sessions in",
        "2020-21 exported from Google Forms, 9 in 2023-24 exported from Qualtrics, two",
        "open-ended questions) so the pipeline can be run and tested end to end.",
        "",
        "Regenerate (byte-for-byte identical for the same arguments):",
        "",
        "```sh",
        f".venv/bin/{_command(counts['n_answers'], counts['seed'], len(counts['by_year']))}",
        "```",
        "",
        *([] if len(counts["by_year"]) == len(YEARS) else [
            f"This copy holds {len(counts['by_year'])} school years (`--years`), "
            f"{min(counts['by_year'])} to {max(counts['by_year'])}: 2020-21 and 2023-24 as "
            "described", "here when among them, the others shaped like 2023-24 (9 Qualtrics "
            "sessions).", ""]),
        "## Layout",
        "",
        "- `roster.csv` — `full_name,role`: the 6 external coaches and "
        f"{len(STAFF)} school staff. Redaction replaces",
        "  these names (first, last or full, any case, possessive) in answers. No name is an",
        "  English or codebook word.",
        "- `landing/<school_year>/mapping.yaml` — which export column holds which field.",
        "- `landing/<school_year>/session-NN.csv` — one export per surveyed session (a new export",
        "  lands after each monthly coaching cycle).",
        "",
        "## Counts",
        "",
        "An *answered* response is a non-blank answer cell (after stripping whitespace) in a",
        "distinct submission; non-substantive answers such as `NA`, `N/A`, `none`, `-` count as",
        "answered. Duplicates are exact repeats of a row and are not counted.",
        "",
        f"- Answered responses: **{counts['answered']}** "
        f"(Q1 \"what worked\" {counts['worked']}, Q2 \"improve\" {counts['improve']})",
        f"- Files: {counts['files']}; data rows: {counts['rows']} "
        f"({counts['submissions']} distinct submissions + {counts['duplicates']} duplicate rows)",
        f"- Submissions with both questions blank: {counts['blank_rows']}",
        f"- Schools: {counts['schools']}; coaches: {counts['coaches']}",
        "",
        "| file | source | encoding | rows | duplicates | both blank | Q1 answered "
        "| Q2 answered | schools |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for f in counts["per_file"]:
        lines.append(
            f"| `{f['file']}` | {f['source']} | {f['encoding']} | {f['rows']} | "
            f"{f['duplicates']} | {f['blank_rows']} | {f['worked']} | {f['improve']} | "
            f"{f['schools']} |"
        )
    lines += [
        "",
        "Per year: " + "; ".join(f"{y} {n} answered" for y, n in counts["by_year"].items()) + ".",
        "",
        "## Quirks",
        "",
        "By file:",
        "",
    ]
    for f in counts["per_file"]:
        if f["encoding"] != "utf-8":
            lines.append(f"- `{f['file']}`: {QUIRK_NOTES[f['encoding']]}.")
    lines += [
        "- All other files: UTF-8 without a BOM. Every export has CRLF record ends; multi-line",
        "  answers are quoted and use LF inside the quotes.",
        "",
        "Google Forms (2020-21): `Timestamp` first, as `M/D/YYYY H:MM:SS` without zero padding;",
        "an `Email Address` column (identifying); one column per question headed by its text.",
        "",
        "Qualtrics (2023-24): three header rows (column ids; question text; ImportId JSON such",
        "as `{\"ImportId\":\"QID1_TEXT\"}`), the usual metadata columns, `Q_School`, `Q_Coach`,",
        "`Q_Role`, `Q1`, `Q2` and the embedded-data column `SessionNumber`. Sessions 1-"
        f"{EMAIL_SESSIONS_FROM - 1} went out",
        f"by anonymous link (recipient columns empty); from session {EMAIL_SESSIONS_FROM} by "
        "e-mail, so",
        "`RecipientLastName`, `RecipientFirstName`, `RecipientEmail` and `ExternalReference` are",
        "filled. IP addresses are from the documentation ranges (192.0.2.0/24 etc.).",
        "",
        "In the answers: varied length (one word to long paragraphs, some multi-line or",
        "bulleted), typos (~5%), `NA`/`N/A`/`n/a`/`none`/`None.`/`-`/`nothing` answers, short",
        "answers that match no code (`Good session.`, `Thanks!`), blank cells (a few holding a",
        "single space), smart quotes (’ “ ”), emoji (😊 👍, not in the cp1252 file), coaches'",
        "first names and colleagues' first or last names typed into answers (possessive,",
        "sometimes lower-case), exact repeated submissions (the same row twice, adjacent), and",
        "submissions with both questions blank.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def generate_sample(out_dir: Path, n_answers: int = 772, seed: int = 2024,
                    n_years: int = len(YEARS)) -> dict:
    """Write the synthetic sample (roster, mappings, exports, README) and return its counts.

    Exactly `n_answers` answered responses over distinct submissions, 40% in 2020-21 and 60%
    in 2023-24. The study's sessions stay fixed (4 + 9 export files); larger sizes add
    respondents per school and rows per file (1,000,000 answers: ~700k rows, ~1 minute).
    `n_years` other than 2: the years of study_years(n_years), shared by their sessions.
    """
    if n_answers < 10:
        raise ValueError("n_answers must be at least 10")
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    specs = study_years(n_years)
    targets = [round(n_answers * y.share) for y in specs[:-1]]
    targets.append(n_answers - sum(targets))
    busiest = max(t / len(y.session_weeks) for t, y in zip(targets, specs, strict=True))
    per_school = max(5, math.ceil(busiest / 1.45 / len(SCHOOLS) * 1.3))
    people = _build_people(rng, per_school)
    colleagues = _colleagues(people)

    coach_of = None
    years = []
    for spec, target in zip(specs, targets, strict=True):
        coach_of = _assign_coaches(rng, coach_of)
        n_blank = max(1, round(target / 300))
        year = _plan_year(rng, spec, target, coach_of, people, n_blank)
        _fill_answers(rng, year, colleagues)
        _add_whitespace_blanks(rng, year, max(1, round(target / 300)))
        _add_duplicates(rng, year, max(2, round(target / 200)))
        if spec.source == "qualtrics":
            _qualtrics_details(rng, year)
        years.append(year)

    _write_roster(out_dir / "roster.csv")
    per_file = []
    for year in years:
        yr = year.spec.school_year
        folder = out_dir / "landing" / yr
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "mapping.yaml").write_text(
            MAPPING_YAML[year.spec.source].replace("{year}", yr), encoding="utf-8", newline="\n")
        for session, subs in year.submissions.items():
            encoding = ENCODINGS.get((yr, session), "utf-8")
            rows = (_google_rows(subs) if year.spec.source == "google-forms"
                    else _qualtrics_rows(subs, session))
            name = f"session-{session:02d}.csv"
            (folder / name).write_bytes(_csv_bytes(rows, encoding))
            per_file.append({"file": f"landing/{yr}/{name}", "year": yr,
                             "source": year.spec.source, "encoding": encoding,
                             **_file_counts(subs)})

    counts = _totals(per_file, years, n_answers, seed)
    (out_dir / "README.md").write_text(_readme(counts), encoding="utf-8", newline="\n")
    return counts


def _write_roster(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [("full_name", "role")] + [(c, "external coach") for c in COACHES] + list(STAFF)
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8"))


def _totals(per_file: list[dict], years: list[_Year], n_answers: int, seed: int) -> dict:
    def total(key: str) -> int:
        return sum(f[key] for f in per_file)

    all_subs = [s for y in years for subs in y.submissions.values() for s in subs]
    by_year = {y.spec.school_year: sum(f["worked"] + f["improve"] for f in per_file
                                       if f["year"] == y.spec.school_year) for y in years}
    return {
        "n_answers": n_answers, "seed": seed,
        "answered": total("worked") + total("improve"),
        "worked": total("worked"), "improve": total("improve"),
        "files": len(per_file), "rows": total("rows"), "duplicates": total("duplicates"),
        "submissions": total("rows") - total("duplicates"), "blank_rows": total("blank_rows"),
        "schools": len({s.school for s in all_subs}), "coaches": len({s.coach for s in all_subs}),
        "by_year": by_year, "per_file": per_file,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.sample.synth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output folder (data/sample)")
    parser.add_argument("--answers", type=int, default=772, help="answered responses (772)")
    parser.add_argument("--seed", type=int, default=2024, help="random seed (2024)")
    parser.add_argument("--years", type=int, default=len(YEARS),
                        help="school years (2: the study's; more: see study_years)")
    args = parser.parse_args(argv)
    counts = generate_sample(args.out, args.answers, args.seed, args.years)
    print(f"wrote {counts['files']} export files to {args.out}: {counts['answered']} answered "
          f"responses (Q1 {counts['worked']}, Q2 {counts['improve']}), {counts['rows']} rows, "
          f"{counts['duplicates']} duplicate rows, {counts['blank_rows']} blank submissions, "
          f"{counts['schools']} schools, {counts['coaches']} coaches")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
