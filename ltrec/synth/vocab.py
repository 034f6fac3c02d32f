"""Vocabularies of the demo shop: a three-level taxonomy with English product language.

Each top category carries its brands, adjectives, materials (or formats, origins) and a
log-normal price law; each sub-category carries the sentences its descriptions are built from
(uses and features); each leaf carries its product nouns. Titles and descriptions drawn from
these lists share words within a category and almost none across categories, so any text
encoder (MiniLM or TF-IDF) places shoes near shoes and far from knives.
"""

from __future__ import annotations

from typing import TypedDict


class Sub(TypedDict):
    phrases: list[str]  # description sentences for the whole sub-category
    leaves: dict[str, list[str]]  # leaf name -> product nouns (singular, lower case)


class Top(TypedDict):
    price: tuple[float, float]  # median price, log-sd of the log-normal price law
    brands: list[str]
    adjectives: list[str]
    materials: list[str]
    subs: dict[str, Sub]


TAXONOMY: dict[str, Top] = {
    "Home": {
        "price": (35.0, 0.7),
        "brands": ["Kurogane", "Hearthline", "Nordvik", "Casa Olmo", "Linden & Co", "Ashgrove"],
        "adjectives": ["classic", "modern", "handcrafted", "minimalist", "sturdy", "elegant"],
        "materials": ["stainless steel", "oak", "cast iron", "ceramic", "linen", "bamboo"],
        "subs": {
            "Kitchen": {
                "phrases": [
                    "Ideal for slicing vegetables, herbs and meat.",
                    "Balanced in the hand for precise everyday cooking.",
                    "Holds a razor-sharp edge and is easy to hone.",
                    "Heats evenly on gas, electric and induction hobs.",
                    "Brews a rich cup of coffee or tea every morning.",
                ],
                "leaves": {
                    "Knives": ["chef's knife", "paring knife", "santoku knife", "bread knife"],
                    "Cookware": ["frying pan", "saucepan", "stockpot", "skillet", "wok"],
                    "Coffee & Tea": ["pour-over coffee dripper", "french press", "teapot"],
                },
            },
            "Bedding": {
                "phrases": [
                    "Soft, breathable fabric for a restful night's sleep.",
                    "Keeps you cool in summer and cosy in winter.",
                    "Fits mattresses up to 35 cm deep.",
                    "Machine washable and gets softer with every wash.",
                ],
                "leaves": {
                    "Sheets": ["fitted sheet", "flat sheet", "duvet cover", "pillowcase set"],
                    "Pillows": ["memory foam pillow", "down pillow", "body pillow"],
                },
            },
            "Decor": {
                "phrases": [
                    "Adds a warm, inviting touch to the living room.",
                    "A thoughtful housewarming gift.",
                    "Looks beautiful on a mantelpiece, shelf or dining table.",
                    "Fills the room with a calming scent.",
                ],
                "leaves": {
                    "Candles": ["scented candle", "pillar candle", "tealight set"],
                    "Vases": ["flower vase", "bud vase", "floor vase"],
                },
            },
        },
    },
    "Fashion": {
        "price": (45.0, 0.6),
        "brands": ["Marlowe", "Thread & Pine", "Veloure", "Kestrel", "Saint Aubin", "Norrland"],
        "adjectives": ["slim-fit", "relaxed", "tailored", "oversized", "lightweight", "timeless"],
        "materials": ["organic cotton", "merino wool", "linen", "denim", "silk", "cashmere"],
        "subs": {
            "Women": {
                "phrases": [
                    "A flattering silhouette for work or weekend.",
                    "Pairs easily with jeans, skirts or tailored trousers.",
                    "Available in sizes XS to XXL.",
                    "Dress it up with heels or down with sneakers.",
                ],
                "leaves": {
                    "Dresses": ["midi dress", "wrap dress", "maxi dress", "shirt dress"],
                    "Knitwear": ["cardigan", "crew-neck jumper", "turtleneck sweater"],
                },
            },
            "Men": {
                "phrases": [
                    "A sharp look for the office and beyond.",
                    "Cut for comfort with a modern tailored fit.",
                    "Layer it over a t-shirt or under a coat.",
                    "Wrinkle-resistant and easy to care for.",
                ],
                "leaves": {
                    "Shirts": ["oxford shirt", "flannel shirt", "polo shirt", "dress shirt"],
                    "Jackets": ["bomber jacket", "overshirt", "rain jacket", "blazer"],
                },
            },
            "Accessories": {
                "phrases": [
                    "The finishing touch for any outfit.",
                    "Roomy enough for a laptop, keys and a water bottle.",
                    "Soft against the skin and warm on cold days.",
                    "Comes in a gift box.",
                ],
                "leaves": {
                    "Bags": ["tote bag", "crossbody bag", "backpack", "weekender bag"],
                    "Scarves": ["knitted scarf", "silk scarf", "wool shawl"],
                },
            },
        },
    },
    "Shoes": {
        "price": (80.0, 0.45),
        "brands": ["Stridewell", "Altura", "Pacefield", "Roamer", "Ketl", "Bergpfad"],
        "adjectives": ["cushioned", "breathable", "waterproof", "lightweight", "grippy", "durable"],
        "materials": ["mesh", "suede", "full-grain leather", "knit", "rubber", "canvas"],
        "subs": {
            "Running": {
                "phrases": [
                    "Responsive cushioning for long runs and race day.",
                    "A snug heel and roomy toe box for a natural stride.",
                    "Grippy outsole for tarmac, track and trail.",
                    "Reflective details for running after dark.",
                ],
                "leaves": {
                    "Road Running Shoes": ["road running shoe", "racing flat", "daily trainer"],
                    "Trail Running Shoes": ["trail running shoe", "fell running shoe"],
                },
            },
            "Casual": {
                "phrases": [
                    "All-day comfort for city walking.",
                    "A versatile shoe that goes with jeans or chinos.",
                    "Cushioned insole and flexible sole.",
                    "Easy to slip on and off.",
                ],
                "leaves": {
                    "Sneakers": ["low-top sneaker", "high-top sneaker", "court sneaker"],
                    "Loafers": ["penny loafer", "tassel loafer", "boat shoe"],
                },
            },
            "Outdoor": {
                "phrases": [
                    "Ankle support and traction on rocky paths.",
                    "Keeps feet dry through streams and mud.",
                    "Built for day hikes and multi-day treks.",
                    "Quick-drying for beach and river days.",
                ],
                "leaves": {
                    "Hiking Boots": ["hiking boot", "trekking boot", "approach shoe"],
                    "Sandals": ["walking sandal", "sport sandal", "flip-flop"],
                },
            },
        },
    },
    "Electronics": {
        "price": (70.0, 0.75),
        "brands": ["Voltix", "Sonora", "Quanta", "Lumeo", "Brightwave", "Nexa"],
        "adjectives": [
            "wireless",
            "compact",
            "high-fidelity",
            "smart",
            "rechargeable",
            "ergonomic",
        ],
        "materials": ["aluminium", "matte black", "graphite", "white", "silver", "carbon"],
        "subs": {
            "Audio": {
                "phrases": [
                    "Rich bass and crisp highs with active noise cancelling.",
                    "Up to 30 hours of battery life on a single charge.",
                    "Bluetooth 5.3 pairing with phones, tablets and laptops.",
                    "Fills the room with clear, balanced sound.",
                ],
                "leaves": {
                    "Headphones": ["over-ear headphones", "earbuds", "on-ear headphones"],
                    "Speakers": ["bluetooth speaker", "soundbar", "bookshelf speaker"],
                },
            },
            "Computing": {
                "phrases": [
                    "Low-latency input for work and gaming.",
                    "Connects over USB-C or a wireless receiver.",
                    "Works with Windows, macOS and Linux.",
                    "Quiet keys and a comfortable typing angle.",
                ],
                "leaves": {
                    "Keyboards": ["mechanical keyboard", "low-profile keyboard", "numeric keypad"],
                    "Mice": ["wireless mouse", "vertical mouse", "gaming mouse", "trackball"],
                },
            },
            "Smart Home": {
                "phrases": [
                    "Control it from your phone or by voice assistant.",
                    "Set schedules and automations in the app.",
                    "Motion alerts and night vision for peace of mind.",
                    "Installs in minutes over home wi-fi.",
                ],
                "leaves": {
                    "Smart Plugs": ["smart plug", "smart power strip", "energy monitor"],
                    "Security Cameras": ["indoor security camera", "video doorbell"],
                },
            },
        },
    },
    "Sports & Outdoors": {
        "price": (40.0, 0.8),
        "brands": ["Summitra", "Trailhaus", "Coreline", "Velo Nord", "Basecamp Co", "Fjellro"],
        "adjectives": ["ultralight", "packable", "weatherproof", "adjustable", "rugged", "pro"],
        "materials": ["ripstop nylon", "polyester", "aluminium", "TPE foam", "steel", "down"],
        "subs": {
            "Camping": {
                "phrases": [
                    "Pitches in minutes and stands firm in wind and rain.",
                    "Packs small for backpacking and festivals.",
                    "Rated for cold nights down to minus five degrees.",
                    "Sleeps two with room for gear.",
                ],
                "leaves": {
                    "Tents": ["dome tent", "backpacking tent", "family tent"],
                    "Sleeping Bags": ["mummy sleeping bag", "down sleeping bag", "sleeping mat"],
                },
            },
            "Cycling": {
                "phrases": [
                    "Be seen on dark commutes and country lanes.",
                    "Fits most road, gravel and mountain bikes.",
                    "USB rechargeable with several light modes.",
                    "Certified impact protection with a ventilated shell.",
                ],
                "leaves": {
                    "Bike Lights": ["front bike light", "rear bike light", "bike light set"],
                    "Helmets": ["road bike helmet", "commuter helmet", "mountain bike helmet"],
                },
            },
            "Fitness": {
                "phrases": [
                    "Non-slip grip for yoga, pilates and stretching.",
                    "Build strength at home with a compact set.",
                    "Easy to clean and store after a workout.",
                    "Supports every pose and every rep.",
                ],
                "leaves": {
                    "Yoga Mats": ["yoga mat", "travel yoga mat", "yoga block"],
                    "Weights": ["dumbbell set", "kettlebell", "resistance band set"],
                },
            },
        },
    },
    "Beauty": {
        "price": (22.0, 0.6),
        "brands": ["Lumière", "Botanica", "Dermalab", "Aurelle", "Pure Fern", "Maison Iris"],
        "adjectives": ["hydrating", "gentle", "nourishing", "fragrance-free", "vegan", "radiant"],
        "materials": ["hyaluronic acid", "vitamin C", "argan oil", "shea butter", "aloe vera"],
        "subs": {
            "Skincare": {
                "phrases": [
                    "Plumps and hydrates for visibly smoother skin.",
                    "Suitable for sensitive and combination skin.",
                    "Dermatologist tested and cruelty free.",
                    "Apply morning and evening after cleansing.",
                ],
                "leaves": {
                    "Moisturisers": ["face moisturiser", "night cream", "day cream with SPF"],
                    "Serums": ["face serum", "eye serum", "retinol serum"],
                },
            },
            "Hair Care": {
                "phrases": [
                    "Smooths frizz and adds shine to dry hair.",
                    "Gentle enough for daily washing.",
                    "Dries hair fast with less heat damage.",
                    "Leaves hair soft, light and manageable.",
                ],
                "leaves": {
                    "Shampoo": ["shampoo", "conditioner", "hair mask"],
                    "Hair Tools": ["hair dryer", "hair straightener", "curling wand"],
                },
            },
            "Fragrance": {
                "phrases": [
                    "Notes of bergamot, jasmine and warm sandalwood.",
                    "A long-lasting scent for day and evening.",
                    "Presented in an elegant glass bottle.",
                    "A fresh, citrus fragrance for summer.",
                ],
                "leaves": {
                    "Perfume": ["eau de parfum", "eau de toilette", "perfume oil"],
                    "Body Care": ["body lotion", "shower gel", "hand cream"],
                },
            },
        },
    },
    "Garden": {
        "price": (25.0, 0.8),
        "brands": ["Greenthumb", "Hollybrook", "Wildroot", "Terra Verde", "Fernleigh", "Allotment"],
        "adjectives": ["heavy-duty", "weather-resistant", "ergonomic", "solar", "hardy", "rustic"],
        "materials": ["carbon steel", "terracotta", "galvanised steel", "ash wood", "recycled"],
        "subs": {
            "Garden Tools": {
                "phrases": [
                    "Makes light work of pruning shrubs and roses.",
                    "A comfortable grip for long days in the garden.",
                    "Rust-resistant blade that stays sharp.",
                    "Perfect for planting bulbs and seedlings.",
                ],
                "leaves": {
                    "Pruners": ["bypass pruner", "loppers", "hedge shears"],
                    "Hand Tools": ["hand trowel", "garden fork", "weeding tool"],
                },
            },
            "Plants & Seeds": {
                "phrases": [
                    "Easy to grow on a sunny windowsill or balcony.",
                    "Germinates quickly and crops all summer.",
                    "Drainage holes keep roots healthy.",
                    "Brings colour to patios and borders.",
                ],
                "leaves": {
                    "Seeds": ["tomato seeds", "herb seed kit", "wildflower seed mix"],
                    "Planters": ["plant pot", "raised bed", "hanging basket"],
                },
            },
            "Outdoor Living": {
                "phrases": [
                    "Lights up the garden path at dusk.",
                    "Relax in the shade on long summer afternoons.",
                    "Charges by day from the sun, no wiring needed.",
                    "Built to stay outside all year.",
                ],
                "leaves": {
                    "Garden Lights": ["solar path light", "string lights", "lantern"],
                    "Hammocks": ["garden hammock", "hammock chair", "hammock stand"],
                },
            },
        },
    },
    "Toys & Games": {
        "price": (24.0, 0.6),
        "brands": ["Playwise", "Meeple House", "Brightblock", "Tinker Fox", "Gamewright Co"],
        "adjectives": ["family", "educational", "strategic", "colourful", "classic", "cooperative"],
        "materials": ["wooden", "cardboard", "plastic-free", "magnetic", "deluxe"],
        "subs": {
            "Games": {
                "phrases": [
                    "Hours of fun for two to six players.",
                    "Easy to learn, with deep strategy for game night.",
                    "A great party game for friends and family.",
                    "Each round takes around thirty minutes.",
                ],
                "leaves": {
                    "Board Games": ["board game", "strategy game", "cooperative board game"],
                    "Card Games": ["card game", "trivia game", "party game"],
                },
            },
            "Puzzles": {
                "phrases": [
                    "A relaxing challenge for a rainy afternoon.",
                    "Precision-cut pieces that fit snugly.",
                    "Features a beautiful illustrated landscape.",
                    "Glue and frame it when you are done.",
                ],
                "leaves": {
                    "Jigsaw Puzzles": ["1000-piece jigsaw puzzle", "500-piece jigsaw puzzle"],
                    "Brain Teasers": ["puzzle cube", "brain teaser set", "logic puzzle"],
                },
            },
            "Construction": {
                "phrases": [
                    "Sparks creativity and builds fine motor skills.",
                    "Compatible with other major brick brands.",
                    "Step-by-step instructions for young builders.",
                    "For ages six and up.",
                ],
                "leaves": {
                    "Building Blocks": ["building block set", "brick starter kit", "marble run"],
                    "Model Kits": ["model car kit", "model plane kit", "robot kit"],
                },
            },
        },
    },
    "Books": {
        "price": (14.0, 0.35),
        "brands": ["Harbor Press", "Quill & Ink", "Lantern Books", "Redfern", "Northlight"],
        "adjectives": ["gripping", "bestselling", "award-winning", "illustrated", "heartwarming"],
        "materials": ["paperback", "hardcover", "collector's edition", "large print"],
        "subs": {
            "Fiction": {
                "phrases": [
                    "A page-turner you will not be able to put down.",
                    "A detective races against time to solve the case.",
                    "An epic journey across distant worlds and galaxies.",
                    "Shortlisted for a major literary prize.",
                ],
                "leaves": {
                    "Crime": ["crime novel", "detective thriller", "murder mystery"],
                    "Science Fiction": ["science fiction novel", "space opera", "dystopian novel"],
                },
            },
            "Non-fiction": {
                "phrases": [
                    "Over one hundred recipes for weeknight dinners.",
                    "A vivid history of empires, wars and ideas.",
                    "Meticulously researched and beautifully written.",
                    "Full-colour photography throughout.",
                ],
                "leaves": {
                    "Cookbooks": ["cookbook", "baking book", "vegetarian cookbook"],
                    "History": ["history book", "biography", "memoir"],
                },
            },
            "Children's": {
                "phrases": [
                    "A bedtime story to read aloud together.",
                    "Bright illustrations that little ones love.",
                    "Helps early readers grow in confidence.",
                    "Ages three to seven.",
                ],
                "leaves": {
                    "Picture Books": ["picture book", "board book", "bedtime story book"],
                    "Early Readers": ["early reader", "chapter book", "activity book"],
                },
            },
        },
    },
    "Grocery": {
        "price": (9.0, 0.55),
        "brands": ["Roastery No. 7", "Olivara", "Pantry Lane", "Cacao Moon", "Harvest Mill"],
        "adjectives": ["organic", "artisan", "single-origin", "small-batch", "gourmet", "rich"],
        "materials": ["fair-trade", "Italian", "Colombian", "Ethiopian", "Belgian", "Spanish"],
        "subs": {
            "Coffee": {
                "phrases": [
                    "Notes of dark chocolate, caramel and red berries.",
                    "Roasted in small batches for a smooth, full body.",
                    "Perfect for espresso, filter or cafetiere.",
                    "Ethically sourced direct from the farm.",
                ],
                "leaves": {
                    "Whole Bean Coffee": ["whole bean coffee", "espresso beans"],
                    "Ground Coffee": ["ground coffee", "decaf ground coffee", "coffee pods"],
                },
            },
            "Pantry": {
                "phrases": [
                    "Cold-pressed for a peppery, fruity flavour.",
                    "Bronze-cut for a sauce that clings.",
                    "A staple of the Mediterranean kitchen.",
                    "Adds depth to stews, curries and marinades.",
                ],
                "leaves": {
                    "Olive Oil": ["extra virgin olive oil", "olive oil gift set"],
                    "Pasta": ["spaghetti", "rigatoni", "fresh egg pasta"],
                    "Spices": ["smoked paprika", "spice blend", "saffron"],
                },
            },
            "Snacks": {
                "phrases": [
                    "A treat for the afternoon slump.",
                    "Made with real cocoa butter and no palm oil.",
                    "Crunchy, salty and moreish.",
                    "Individually wrapped for lunch boxes.",
                ],
                "leaves": {
                    "Chocolate": ["dark chocolate bar", "milk chocolate truffles", "chocolate"],
                    "Crisps & Nuts": ["sea salt crisps", "roasted almonds", "trail mix"],
                },
            },
        },
    },
    "Pets": {
        "price": (20.0, 0.75),
        "brands": ["Happy Paws", "Whisker & Co", "Barkwell", "Purrfect", "Tailwind Pets"],
        "adjectives": ["cosy", "chew-resistant", "washable", "interactive", "orthopaedic"],
        "materials": ["plush", "natural rubber", "sisal", "grain-free", "memory foam"],
        "subs": {
            "Dogs": {
                "phrases": [
                    "Keeps your dog busy and happy for hours.",
                    "Supports older dogs with sore joints.",
                    "Tough enough for enthusiastic chewers.",
                    "Removable cover goes straight in the washing machine.",
                ],
                "leaves": {
                    "Dog Beds": ["dog bed", "dog crate mat", "dog blanket"],
                    "Dog Toys": ["dog chew toy", "tug rope", "fetch ball"],
                },
            },
            "Cats": {
                "phrases": [
                    "A place to scratch, climb and nap.",
                    "Complete nutrition for adult cats.",
                    "Saves your sofa from scratching.",
                    "Tastes cats love, with no artificial additives.",
                ],
                "leaves": {
                    "Cat Trees": ["cat tree", "scratching post", "cat shelf"],
                    "Cat Food": ["dry cat food", "wet cat food", "cat treats"],
                },
            },
            "Aquarium": {
                "phrases": [
                    "Keeps tank water crystal clear.",
                    "Quiet operation for freshwater aquariums.",
                    "A healthy home for tropical fish.",
                    "Easy to set up for beginners.",
                ],
                "leaves": {
                    "Aquarium Equipment": ["aquarium filter", "aquarium heater", "air pump"],
                },
            },
        },
    },
    "Baby": {
        "price": (30.0, 0.9),
        "brands": ["Little Nest", "Bloom Baby", "Tiny Steps", "Moonbeam", "Cuddle Co"],
        "adjectives": ["safe", "soft", "foldable", "BPA-free", "portable", "soothing"],
        "materials": ["organic cotton", "silicone", "beech wood", "muslin", "recycled plastic"],
        "subs": {
            "Nursery": {
                "phrases": [
                    "Crystal-clear audio and video so you can rest easy.",
                    "Soothing white noise and a gentle night light.",
                    "Breathable for safe sleep.",
                    "Grows with your baby from birth.",
                ],
                "leaves": {
                    "Baby Monitors": ["baby monitor", "video baby monitor", "sleep sensor"],
                    "Swaddles": ["swaddle blanket", "sleeping bag for babies", "muslin square"],
                },
            },
            "Feeding": {
                "phrases": [
                    "Anti-colic valve for comfortable feeding.",
                    "Easy to clean and dishwasher safe.",
                    "A first step to weaning and family meals.",
                    "Sterilise in the microwave or steriliser.",
                ],
                "leaves": {
                    "Bottles": ["baby bottle", "bottle set", "sippy cup"],
                    "High Chairs": ["high chair", "booster seat", "weaning set"],
                },
            },
            "Travel": {
                "phrases": [
                    "Folds with one hand and fits in small boots.",
                    "Smooth ride on pavements and park paths.",
                    "Tested to the latest safety standards.",
                    "Suitable from birth to four years.",
                ],
                "leaves": {
                    "Strollers": ["stroller", "pushchair", "travel system"],
                    "Car Seats": ["infant car seat", "convertible car seat"],
                },
            },
        },
    },
    "Office": {
        "price": (18.0, 0.9),
        "brands": ["Inkwell", "Deskcraft", "Paperhaus", "Ergon", "Studio Nib"],
        "adjectives": ["premium", "refillable", "ergonomic", "adjustable", "dot-grid", "compact"],
        "materials": ["recycled paper", "brass", "mesh", "walnut", "vegan leather"],
        "subs": {
            "Stationery": {
                "phrases": [
                    "Smooth, fountain-pen-friendly paper that does not bleed.",
                    "Lays flat for journaling, sketching and planning.",
                    "A satisfying, smooth writing experience.",
                    "A thoughtful gift for writers and students.",
                ],
                "leaves": {
                    "Notebooks": ["notebook", "bullet journal", "planner"],
                    "Pens": ["fountain pen", "gel pen set", "rollerball pen"],
                },
            },
            "Office Furniture": {
                "phrases": [
                    "Lumbar support for long days at the desk.",
                    "Switch between sitting and standing in seconds.",
                    "Adjustable height, armrests and tilt.",
                    "Sturdy frame with easy assembly.",
                ],
                "leaves": {
                    "Chairs": ["office chair", "kneeling chair", "task chair"],
                    "Desks": ["standing desk", "writing desk", "desk riser"],
                },
            },
        },
    },
    "Music & Hobbies": {
        "price": (28.0, 0.9),
        "brands": ["Harmonia", "Fretwork", "Woolly Mill", "Palette & Co", "Makers Loft"],
        "adjectives": ["beginner", "professional", "vibrant", "hand-dyed", "portable", "tuned"],
        "materials": ["mahogany", "spruce", "merino", "cotton", "watercolour"],
        "subs": {
            "Instruments": {
                "phrases": [
                    "Warm, bright tone that stays in tune.",
                    "A great first instrument for beginners.",
                    "Comes with a padded gig bag.",
                    "Easy to play with low action strings.",
                ],
                "leaves": {
                    "Ukuleles": ["soprano ukulele", "concert ukulele", "tenor ukulele"],
                    "Guitar Accessories": ["guitar strings", "guitar capo", "clip-on tuner"],
                },
            },
            "Crafts": {
                "phrases": [
                    "Soft yarn for jumpers, hats and blankets.",
                    "Rich pigments that blend beautifully on paper.",
                    "Everything you need to start a new hobby.",
                    "Loved by knitters and painters alike.",
                ],
                "leaves": {
                    "Knitting": ["knitting yarn", "knitting needle set", "crochet hook set"],
                    "Painting": ["watercolour paint set", "acrylic paint set", "sketchbook"],
                },
            },
        },
    },
}

#: Variants appended to some titles, per top category (sizes, colours, pack sizes).
VARIANTS: dict[str, list[str]] = {
    "Home": ["20 cm", "24 cm", "set of 2", "large", "small", "grey", "sage green"],
    "Fashion": ["navy", "black", "olive", "cream", "burgundy", "charcoal"],
    "Shoes": ["black", "white", "navy", "grey", "trail green", "wide fit"],
    "Electronics": ["black", "white", "2nd gen", "pro edition", "mini"],
    "Sports & Outdoors": ["2-person", "1-person", "blue", "orange", "large", "medium"],
    "Beauty": ["50 ml", "100 ml", "30 ml", "travel size", "refill"],
    "Garden": ["small", "large", "pack of 3", "pack of 10", "green"],
    "Toys & Games": ["travel edition", "deluxe edition", "junior edition"],
    "Books": ["2nd edition", "signed edition", "book 1", "book 2"],
    "Grocery": ["250 g", "500 g", "1 kg", "750 ml", "pack of 6"],
    "Pets": ["small", "medium", "large", "2 kg", "multipack"],
    "Baby": ["0-6 months", "6-12 months", "grey", "sand", "twin pack"],
    "Office": ["A5", "A4", "black", "pack of 3", "walnut"],
    "Music & Hobbies": ["natural", "sunburst", "pack of 5", "12 colours", "24 colours"],
}

#: User segment values with their shares (DESIGN §2: every users column is a dimension).
REGIONS = {"North": 0.22, "South": 0.25, "East": 0.16, "West": 0.21, "Central": 0.16}
DEVICES = {"mobile": 0.58, "desktop": 0.34, "tablet": 0.08}
TIERS = {"standard": 0.86, "plus": 0.14}
AGE_BANDS = {
    "18-24": 0.14,
    "25-34": 0.27,
    "35-44": 0.23,
    "45-54": 0.17,
    "55-64": 0.12,
    "65+": 0.07,
}
