"""Word lists the pair templates fill their slots from (written for this project, not taken from a data set).

Each slot kind says which family of look-alike a change of its value makes: a proper name (``name``), a
common content word (``substitution``), a number (``number``) or a unit (``unit``). Values of one kind are
interchangeable in every template that uses the kind, so swapping one for another always changes the
question.
"""

from __future__ import annotations


def _split(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split("|") if item.strip())


#: kind -> (family a change of value makes, values)
SLOTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "country": ("name", _split("France|Germany|Japan|Brazil|Canada|India|Italy|Spain|Mexico|Egypt|Kenya|Norway|"
                               "Australia|Argentina|Vietnam|Poland|Turkey|Greece|Portugal|Sweden|Chile|Peru|"
                               "Thailand|Nigeria|Ireland|Morocco|Iceland|Colombia")),
    "city": ("name", _split("Paris|Berlin|Tokyo|London|Madrid|Rome|Toronto|Sydney|Chicago|Boston|Seattle|Mumbai|"
                            "Cairo|Lisbon|Dublin|Vienna|Prague|Oslo|Denver|Austin|Miami|Seoul|Bangkok|Lima|"
                            "Amsterdam|Athens|Nairobi|Vancouver")),
    "plang": ("name", _split("Python|Java|JavaScript|Rust|Go|C++|Ruby|Kotlin|Swift|TypeScript|PHP|Haskell|Scala|"
                             "C#|Elixir|Perl")),
    "hlang": ("name", _split("Spanish|French|German|Japanese|Italian|Portuguese|Korean|Mandarin|Arabic|Russian|"
                             "Dutch|Hindi|Turkish|Greek|Swedish")),
    "software": ("name", _split("Excel|Git|Docker|Linux|Windows|Photoshop|Slack|Zoom|WordPress|Kubernetes|"
                                "VS Code|Chrome|Outlook|Jira|Figma|Notion")),
    "company": ("name", _split("Apple|Google|Amazon|Netflix|Tesla|Microsoft|Spotify|Uber|Airbnb|Nike|IKEA|"
                               "Samsung|Toyota|Starbucks|Disney|Intel")),
    "famous": ("name", _split("Einstein|Newton|Shakespeare|Napoleon|Gandhi|Lincoln|Cleopatra|Darwin|Mozart|"
                              "Picasso|Marie Curie|Galileo|Beethoven|Churchill|Frida Kahlo|Nelson Mandela")),
    "person": ("name", _split("Anna|Ben|Carlos|Diana|Ethan|Fatima|George|Hana|Ivan|Julia|Kevin|Laura|Marco|Nina|"
                              "Omar|Priya|Sam|Tom|Yuki|Zoe|Lucas|Mia|Noah|Sofia")),
    "team": ("name", _split("Real Madrid|Barcelona|the Lakers|the Yankees|Liverpool|Bayern Munich|the Celtics|"
                            "Juventus|Arsenal|the Warriors|Chelsea|the Dodgers")),
    "food": ("substitution", _split("rice|pasta|chicken|salmon|broccoli|eggs|potatoes|tofu|quinoa|lentils|"
                                    "spinach|oatmeal|steak|shrimp|mushrooms|carrots|bread|cheese|beans|avocado|"
                                    "pancakes|soup|curry|noodles")),
    "dish": ("substitution", _split("lasagna|banana bread|chili|risotto|pad thai|guacamole|apple pie|fried rice|"
                                    "tomato soup|chocolate cake|hummus|pizza dough|pancakes|omelette|granola")),
    "animal": ("substitution", _split("cats|dogs|rabbits|horses|parrots|hamsters|goldfish|turtles|ferrets|snakes|"
                                      "chickens|guinea pigs")),
    "wild": ("substitution", _split("a lion|a tiger|a shark|a wolf|an eagle|a bear|a crocodile|a gorilla|"
                                    "an elephant|a snake|a hippo|a leopard")),
    "condition": ("substitution", _split("stress|insomnia|anxiety|high blood pressure|obesity|depression|"
                                         "diabetes|headaches|back pain|fatigue|inflammation|dehydration|"
                                         "a poor diet|weight gain|heart disease|acne|hair loss|migraines")),
    "drug": ("substitution", _split("ibuprofen|paracetamol|aspirin|melatonin|antibiotics|antihistamines|"
                                    "vitamin D|magnesium|iron supplements|fish oil|coffee|alcohol")),
    "sport": ("substitution", _split("soccer|tennis|basketball|chess|swimming|running|yoga|cycling|golf|boxing|"
                                     "climbing|rowing|skiing|surfing")),
    "instrument": ("substitution", _split("guitar|piano|violin|drums|flute|cello|ukulele|saxophone|trumpet|harp")),
    "topic": ("substitution", _split("love|autumn|the ocean|friendship|a lost dog|city life|the moon|coffee|"
                                     "winter mornings|my grandmother|rain|a first job|the stars|a long road trip|"
                                     "home")),
    "concept": ("substitution", _split("recursion|inflation|photosynthesis|blockchain|machine learning|"
                                       "compound interest|quantum entanglement|supply and demand|the immune system|"
                                       "black holes|TCP handshakes|climate change|DNA replication|neural networks|"
                                       "plate tectonics|interest rates|public key cryptography|evolution|"
                                       "the stock market|garbage collection")),
    "structure": ("substitution", _split("list|dictionary|string|array|set|tuple|JSON file|CSV file|dataframe|"
                                         "linked list|binary tree|hash map")),
    "coding_task": ("substitution", _split("reverse a string|sort a list|read a CSV file|remove duplicates|"
                                           "merge two dictionaries|parse JSON|check if a number is prime|"
                                           "count words in a file|find the largest element|flatten a nested list|"
                                           "send an HTTP request|generate random numbers|format a date|"
                                           "connect to a database")),
    "profession": ("substitution", _split("nurse|software engineer|teacher|lawyer|accountant|pilot|chef|"
                                          "electrician|pharmacist|architect|plumber|data scientist|dentist|"
                                          "firefighter|graphic designer")),
    "audience": ("substitution", _split("a five-year-old|a beginner|a high school student|a software engineer|"
                                        "my grandmother|a manager|a doctor|an investor|a new employee")),
    "doc": ("substitution", _split("cover letter|resignation letter|thank-you note|wedding toast|complaint email|"
                                   "product description|birthday message|LinkedIn summary|apology email|"
                                   "job description|speech|press release")),
    "plant": ("substitution", _split("tomatoes|basil|roses|orchids|succulents|lavender|strawberries|peppers|"
                                     "ferns|mint|sunflowers|cucumbers")),
    "gadget": ("substitution", _split("laptop|phone|tablet|camera|smartwatch|monitor|printer|router|keyboard|"
                                      "headphones|TV|speaker")),
    "vehicle": ("substitution", _split("car|bike|motorcycle|scooter|truck|van|bus|train")),
    "material": ("substitution", _split("wood|steel|glass|plastic|aluminum|copper|concrete|leather|cotton|wool")),
    "season": ("substitution", _split("summer|winter|spring|autumn")),
    "subject": ("substitution", _split("math|physics|chemistry|biology|history|economics|statistics|"
                                       "philosophy|geography|calculus|algebra|literature")),
    "place": ("substitution", _split("the beach|the mountains|the city|a small town|the countryside|the desert|"
                                     "an island|the suburbs")),
    "num_small": ("number", tuple(str(n) for n in range(2, 13))),
    "num": ("number", tuple(str(n) for n in (3, 5, 7, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 75, 100, 120, 150,
                                             200, 250, 500))),
    "year": ("number", tuple(str(n) for n in range(1950, 2024, 3))),
    "percent": ("number", tuple(str(n) for n in (5, 10, 12, 15, 18, 20, 25, 30, 40, 50, 75))),
    "len_unit": ("unit", _split("miles|kilometers|feet|meters|inches|centimeters|yards")),
    "mass_unit": ("unit", _split("pounds|kilograms|ounces|grams|stones")),
    "temp_unit": ("unit", _split("Celsius|Fahrenheit|Kelvin")),
    "vol_unit": ("unit", _split("liters|gallons|cups|milliliters|quarts|tablespoons|teaspoons")),
    "currency": ("unit", _split("dollars|euros|British pounds|yen|rupees|pesos|Swiss francs|Canadian dollars")),
    "time_unit": ("unit", _split("hours|minutes|seconds|days|weeks|months")),
}

#: Pairs of people in a relation where who does what to whom matters.
ROLE_PAIRS: tuple[tuple[str, str], ...] = (
    ("landlord", "tenant"), ("employer", "employee"), ("teacher", "student"), ("doctor", "patient"),
    ("buyer", "seller"), ("parent", "child"), ("manager", "intern"), ("customer", "company"),
    ("borrower", "lender"), ("driver", "passenger"), ("author", "publisher"), ("coach", "player"),
    ("client", "contractor"), ("host", "guest"), ("referee", "player"), ("police officer", "suspect"),
)
