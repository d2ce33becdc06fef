//! Word tables for the demo business. Names are common in the UK but the
//! people are invented; places are real towns with plausible (not real)
//! postcodes, so nothing here points at anyone.

/// Given names. Those with entries in [`NICKNAMES`] are over-represented on
/// purpose, so nicknames show up often enough to matter in a small demo.
#[rustfmt::skip]
pub const GIVEN: &[&str] = &[
    "William", "Margaret", "Robert", "Elizabeth", "Katherine", "James", "Richard", "Thomas",
    "Edward", "Anthony", "Michael", "Christopher", "Jennifer", "Susan", "Patricia", "Rebecca",
    "Alexander", "Daniel", "Samuel", "Joseph", "Charles", "Victoria", "Deborah", "Catherine",
    "Jonathan", "Matthew", "Nicholas", "Benjamin", "Stephen", "Andrew", "Timothy", "Frederick",
    "Henry", "John", "Mary", "Sarah", "Helen", "Dorothy", "Eleanor", "Gerald", "Peter", "Philip",
    "Ronald", "Kenneth", "Josephine", "Abigail", "Penelope", "Theodore", "Harriet", "Florence",
    "Gregory", "Raymond", "Leonard", "Albert", "Jacqueline", "Caroline", "Joshua", "Oliver",
    "Isabella", "Amelia", "Samantha", "Alexandra", "Frances", "Gwendolyn", "Ann", "Aisha", "Priya",
    "Rahul", "Mohammed", "Fatima", "Zara", "Chloe", "Jessica", "Hannah", "Lucy", "Sophie", "Grace",
    "Ruby", "Emma", "Olivia", "Ella", "Mia", "Poppy", "Isla", "Freya", "Evie", "Holly", "Megan",
    "Laura", "Rachel", "Claire", "Nicola", "Joanne", "Karen", "Julie", "Gillian", "Fiona", "Kirsty",
    "Siobhan", "Niamh", "Aoife", "Bronwen", "Cerys", "Rhian", "Morag", "Ailsa", "Eilidh", "Ewan",
    "Callum", "Lewis", "Ross", "Fraser", "Angus", "Hamish", "Dylan", "Rhys", "Gareth", "Owen",
    "Huw", "Liam", "Sean", "Ciaran", "Declan", "Connor", "Jake", "Ryan", "Luke", "Adam", "Ethan",
    "Noah", "Leo", "Oscar", "Archie", "Alfie", "Toby", "George", "Mark", "Paul", "Simon", "Neil",
    "Gary", "Ian", "Graham", "Keith", "Colin", "Nigel", "Trevor", "Malcolm", "Alan", "Sanjay",
    "Arjun", "Deepa", "Anjali", "Sunita", "Yusuf", "Imran", "Nadia", "Leila", "Omar", "Tariq",
    "Kwame", "Abena", "Chidi", "Ngozi", "Wei", "Mei", "Tomasz", "Katarzyna", "Agnieszka", "Luca",
    "Giulia", "Sofia", "Ioana",
];

/// Formal given name → the short forms people write on forms and at tills.
pub const NICKNAMES: &[(&str, &[&str])] = &[
    ("William", &["Bill", "Will", "Billy"]),
    ("Margaret", &["Peggy", "Maggie", "Meg"]),
    ("Robert", &["Bob", "Rob", "Bobby"]),
    ("Elizabeth", &["Liz", "Beth", "Lizzie"]),
    ("Katherine", &["Kate", "Kathy", "Katie"]),
    ("James", &["Jim", "Jimmy", "Jamie"]),
    ("Richard", &["Dick", "Rich", "Richie"]),
    ("Thomas", &["Tom", "Tommy"]),
    ("Edward", &["Ted", "Eddie", "Ed"]),
    ("Anthony", &["Tony"]),
    ("Michael", &["Mike", "Mick"]),
    ("Christopher", &["Chris", "Kit"]),
    ("Jennifer", &["Jenny", "Jen"]),
    ("Susan", &["Sue", "Susie"]),
    ("Patricia", &["Pat", "Trish"]),
    ("Rebecca", &["Becky", "Becca"]),
    ("Alexander", &["Alex", "Sandy"]),
    ("Daniel", &["Dan", "Danny"]),
    ("Samuel", &["Sam"]),
    ("Joseph", &["Joe"]),
    ("Charles", &["Charlie", "Chas"]),
    ("Victoria", &["Vicky", "Tori"]),
    ("Deborah", &["Debbie", "Deb"]),
    ("Catherine", &["Cathy", "Kate"]),
    ("Jonathan", &["Jon", "Jonny"]),
    ("Matthew", &["Matt"]),
    ("Nicholas", &["Nick", "Nicky"]),
    ("Benjamin", &["Ben"]),
    ("Stephen", &["Steve"]),
    ("Andrew", &["Andy", "Drew"]),
    ("Timothy", &["Tim"]),
    ("Frederick", &["Fred", "Freddie"]),
    ("Henry", &["Harry", "Hal"]),
    ("John", &["Jack", "Johnny"]),
    ("Mary", &["Molly", "Polly"]),
    ("Sarah", &["Sally"]),
    ("Helen", &["Nell"]),
    ("Dorothy", &["Dot", "Dolly"]),
    ("Eleanor", &["Ellie", "Nora"]),
    ("Gerald", &["Gerry"]),
    ("Peter", &["Pete"]),
    ("Philip", &["Phil"]),
    ("Ronald", &["Ron", "Ronnie"]),
    ("Kenneth", &["Ken", "Kenny"]),
    ("Josephine", &["Jo", "Josie"]),
    ("Abigail", &["Abby", "Gail"]),
    ("Penelope", &["Penny"]),
    ("Theodore", &["Theo", "Ted"]),
    ("Harriet", &["Hattie"]),
    ("Florence", &["Flo", "Florrie"]),
    ("Gregory", &["Greg"]),
    ("Raymond", &["Ray"]),
    ("Leonard", &["Len", "Lenny"]),
    ("Albert", &["Bert", "Al"]),
    ("Jacqueline", &["Jackie"]),
    ("Caroline", &["Carrie", "Caro"]),
    ("Joshua", &["Josh"]),
    ("Oliver", &["Ollie"]),
    ("Isabella", &["Bella", "Izzy"]),
    ("Amelia", &["Millie"]),
    ("Samantha", &["Sam", "Sammy"]),
    ("Alexandra", &["Alex", "Lexie"]),
    ("Frances", &["Fran", "Frankie"]),
    ("Gwendolyn", &["Gwen"]),
];

/// The short forms of a formal given name (empty when it has none).
pub fn nicknames_of(given: &str) -> &'static [&'static str] {
    NICKNAMES
        .iter()
        .find(|(formal, _)| *formal == given)
        .map(|(_, n)| *n)
        .unwrap_or(&[])
}

#[rustfmt::skip]
pub const FAMILY: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson",
    "Clarke", "Patel", "Khan", "Lewis", "James", "Phillips", "Mason", "Mitchell", "Rose", "Davis",
    "Rodgers", "Hughes", "Edwards", "Turner", "Hill", "Moore", "Cooper", "Ward", "Morris", "King",
    "Watson", "Harrison", "Morgan", "Baker", "Young", "Allen", "Scott", "Bennett", "Cook", "Shaw",
    "Bailey", "Parker", "Price", "Griffiths", "Carter", "Marshall", "Lloyd", "Collins", "Russell",
    "Ellis", "Webb", "Murray", "Hunt", "Palmer", "Holmes", "Mills", "Barnes", "Knight", "Butler",
    "Fisher", "Stevens", "Jenkins", "Reynolds", "Dixon", "Fletcher", "Harvey", "Graham", "Pearson",
    "Richards", "Chapman", "Owen", "Ali", "Hussain", "Ahmed", "Begum", "Shah", "Singh", "Kaur",
    "Sharma", "Gupta", "Chowdhury", "Rahman", "Okafor", "Mensah", "Adeyemi", "Boateng", "Chen",
    "Wong", "Li", "Nguyen", "Kowalski", "Nowak", "Wisniewski", "Rossi", "Ferrari", "Silva",
    "Popescu", "O'Brien", "O'Connor", "O'Neill", "McDonald", "MacLeod", "McKenzie", "Campbell",
    "Stewart", "Robertson", "Fraser", "Cameron", "Sinclair", "Buchanan", "Munro", "Gallagher",
    "Doherty", "Kelly", "Byrne", "Walsh", "Quinn", "Llewellyn", "Pritchard", "Vaughan", "Rees",
    "Powell", "Howells", "Thornton", "Ashworth", "Hargreaves", "Sutcliffe", "Greenwood", "Holroyd",
    "Ackroyd", "Crowther", "Whitaker", "Lumb", "Haigh", "Brook", "Oldroyd", "Pickles",
    "Barraclough", "Ellison", "Townsend", "Hartley", "Fairbairn", "Blackwood", "Woodward",
    "Gardner", "Hedges", "Fields", "Orchard", "Thorne", "Birch", "Ashby", "Marsh", "Heath", "Moss",
    "Fox", "Hawkins", "Finch", "Crane", "Swann", "Drake", "Nightingale", "Lamb", "Bird", "Rowe",
    "Dale", "Cross", "Nash", "Wells", "Payne", "Lane", "Burton", "Fowler", "Gibson", "Lawrence",
    "Spencer", "Newton", "Hudson", "Lowe", "Armstrong", "Burke", "Gray", "Dawson", "Riley",
    "Holland", "Pearce", "Warren", "Barker", "Hammond", "Chambers", "Barrett", "Bates", "Bishop",
    "Fuller", "Sutton", "Booth", "Wade", "Ashton-Hale", "Lloyd-Jones", "Pryce-Evans",
];

/// Towns and the outward halves of postcodes plausibly found there.
pub const TOWNS: &[(&str, &[&str])] = &[
    ("Leeds", &["LS6", "LS7", "LS8", "LS17"]),
    ("Harrogate", &["HG1", "HG2"]),
    ("York", &["YO10", "YO24", "YO31"]),
    ("Sheffield", &["S7", "S10", "S11"]),
    ("Manchester", &["M20", "M21"]),
    ("Bristol", &["BS6", "BS7", "BS8"]),
    ("Bath", &["BA1", "BA2"]),
    ("Oxford", &["OX2", "OX4"]),
    ("Cambridge", &["CB1", "CB4"]),
    ("Norwich", &["NR2", "NR4"]),
    ("Exeter", &["EX1", "EX4"]),
    ("Brighton", &["BN1", "BN2"]),
    ("Canterbury", &["CT1", "CT2"]),
    ("Cheltenham", &["GL50", "GL52"]),
    ("Worcester", &["WR1", "WR5"]),
    ("Shrewsbury", &["SY1", "SY3"]),
    ("Chester", &["CH2", "CH3"]),
    ("Lancaster", &["LA1"]),
    ("Kendal", &["LA9"]),
    ("Durham", &["DH1"]),
    ("Newcastle upon Tyne", &["NE2", "NE3"]),
    ("Edinburgh", &["EH9", "EH10"]),
    ("Glasgow", &["G12", "G41"]),
    ("Aberdeen", &["AB15"]),
    ("Cardiff", &["CF5", "CF14"]),
    ("Swansea", &["SA2"]),
    ("Belfast", &["BT9"]),
    ("Nottingham", &["NG5", "NG7"]),
    ("Leicester", &["LE2"]),
    ("Birmingham", &["B13", "B17"]),
    ("Reading", &["RG1", "RG4"]),
    ("Guildford", &["GU1", "GU2"]),
    ("Winchester", &["SO22", "SO23"]),
    ("Salisbury", &["SP1", "SP2"]),
    ("Truro", &["TR1"]),
    ("Ludlow", &["SY8"]),
    ("Hexham", &["NE46"]),
    ("Stroud", &["GL5"]),
    ("Frome", &["BA11"]),
    ("Hebden Bridge", &["HX7"]),
    ("Ilkley", &["LS29"]),
    ("Otley", &["LS21"]),
    ("Skipton", &["BD23"]),
];

/// Letters used in the inward half of a UK postcode (never C, I, K, M, O or V).
pub const POSTCODE_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

#[rustfmt::skip]
pub const STREET_NAMES: &[&str] = &[
    "Mill", "Orchard", "Church", "Station", "Park", "Victoria", "Meadow", "Willow", "Beech", "Oak",
    "Chestnut", "Hawthorn", "Rowan", "Elm", "Cedar", "Holly", "Ivy", "Primrose", "Bluebell",
    "Foxglove", "Heather", "Lavender", "Clover", "Bramble", "Fern", "Thistle", "Kingfisher",
    "Heron", "Wren", "Robin", "Lark", "Swallow", "Badger", "Otter", "Brook", "River", "Bridge",
    "Market", "High", "Queen's", "King's", "Albert", "Windsor", "Grange", "Manor", "Abbey",
    "Priory", "Vicarage", "School", "Springfield", "Fairfield", "Greenfield", "Westfield",
    "Highfield", "Moorland", "Dale", "Bank", "Hollin", "Spring", "Well",
];

#[rustfmt::skip]
pub const STREET_SUFFIXES: &[&str] = &[
    "Lane", "Road", "Street", "Close", "Avenue", "Drive", "Way", "Crescent", "Grove", "Gardens",
    "Rise", "Terrace", "Place", "Walk", "Court", "Mews",
];

/// House names, for the addresses that have one instead of (or before) a number.
#[rustfmt::skip]
pub const HOUSE_NAMES: &[&str] = &[
    "Rose Cottage", "The Old Forge", "Ivy House", "Orchard View", "The Laurels", "Holly Lodge",
    "Meadow Barn", "The Coach House", "Willow Cottage", "Fern Bank",
];

/// Words landscaping firms name themselves after.
#[rustfmt::skip]
pub const ORG_WORDS: &[&str] = &[
    "Greenway", "Evergreen", "Oakleaf", "Hawthorn", "Bramble", "Wildwood", "Fernhill",
    "Meadowsweet", "Larkspur", "Yew Tree", "Stonebridge", "Riverside", "Ashgrove", "Thistledown",
    "Foxglove", "Copper Beech", "Old Orchard", "Heather Hill", "Kingfisher", "Blackthorn",
];

#[rustfmt::skip]
pub const ORG_SUFFIXES: &[&str] = &[
    "Landscapes Ltd", "Garden Design", "Grounds Maintenance Ltd", "Landscaping Co.", "Tree Care",
    "Gardeners", "Garden Services Ltd",
];

/// What the web shop sells: (item, price in pence).
pub const SHOP_ITEMS: &[(&str, i64)] = &[
    ("Secateurs (bypass)", 2499),
    ("Gardening gloves, leather (M)", 1299),
    ("Gardening gloves, leather (L)", 1299),
    ("Peat-free compost 40L", 899),
    ("Tomato seeds 'Gardener's Delight'", 249),
    ("Wildflower seed mix", 599),
    ("Daffodil bulbs (25)", 999),
    ("Tulip bulbs 'Queen of Night' (15)", 1199),
    ("Stainless trowel", 1599),
    ("Border fork", 3499),
    ("Watering can 10L", 1899),
    ("Bird feeder", 1499),
    ("Hedge shears", 2999),
    ("Raised bed kit", 7999),
    ("Slug traps (pack of 4)", 799),
    ("Plant labels & marker", 399),
    ("Twine, jute", 299),
    ("Kneeler pad", 1099),
    ("Herb pots (set of 3)", 1799),
    ("Bee hotel", 2199),
];

/// Subscription products for people, and the ones trade customers take.
pub const PRODUCTS: &[&str] = &[
    "Seasonal seed box",
    "Bulb club",
    "Tool care plan",
    "Houseplant box",
    "Veg patch box",
    "Wildlife garden kit",
];
pub const TRADE_PRODUCTS: &[&str] = &[
    "Tool care plan",
    "Trade compost delivery",
    "Trade seed supply",
];

pub const TICKET_SUBJECTS: &[&str] = &[
    "Where is my order?",
    "Seed box arrived damaged",
    "Change my delivery day",
    "Refund for returned item",
    "Wrong item in parcel",
    "How do I pause my subscription?",
    "Cancel my subscription",
    "Card declined on renewal",
    "Question about bulb planting times",
    "Missing loyalty points",
    "Update my address",
    "Invoice copy needed",
    "Tool sharpening collection",
    "Plants arrived wilted",
    "Discount code not working",
];

/// Marketing campaigns: (offer, date sent as YYYY-MM-DD). Dates fixed so every
/// recipient of a campaign got it the same week.
pub const CAMPAIGNS: &[(&str, &str)] = &[
    ("Spring 20% off", "2024-03-08"),
    ("Free delivery weekend", "2024-05-17"),
    ("Autumn bulb sale", "2024-09-13"),
    ("Christmas wreath workshop", "2024-11-22"),
    ("Seed swap invite", "2025-02-14"),
    ("Spring 20% off", "2025-03-07"),
    ("Tool sharpening day", "2025-06-06"),
    ("Autumn bulb sale", "2025-09-12"),
    ("Loyalty double points weekend", "2025-11-21"),
    ("Spring 20% off", "2026-03-10"),
    ("Free delivery weekend", "2026-05-15"),
    ("Bulb club: first box free", "2026-09-30"),
    ("Autumn bulb sale", "2026-10-15"),
    ("Loyalty double points weekend", "2026-10-28"),
];
