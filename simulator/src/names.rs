//! Synthetic Norwegian names, street names and countries. No real person's data.

/// Common Norwegian female given names.
pub const FEMALE: &[&str] = &[
    "Nora", "Emma", "Olivia", "Ella", "Sofie", "Leah", "Frida", "Ingrid", "Sara", "Maja", "Astrid",
    "Anne", "Inger", "Kari", "Marit", "Ingeborg", "Liv", "Eva", "Hilde", "Berit", "Randi", "Solveig",
    "Silje", "Ida", "Thea", "Hanna", "Julie", "Marte", "Tone", "Kristin", "Gunn", "Aud", "Åse",
];

/// Common Norwegian male given names.
pub const MALE: &[&str] = &[
    "Jakob", "Emil", "Noah", "Oliver", "Filip", "William", "Lucas", "Henrik", "Aksel", "Olav", "Jan",
    "Per", "Bjørn", "Ole", "Lars", "Kjell", "Knut", "Arne", "Svein", "Hans", "Geir", "Terje", "Odd",
    "Tor", "Magnus", "Sindre", "Eirik", "Martin", "Anders", "Jonas", "Håkon", "Øyvind", "Ståle",
];

/// Common Norwegian family names.
pub const FAMILY: &[&str] = &[
    "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen",
    "Jensen", "Karlsen", "Johnsen", "Pettersen", "Eriksen", "Berg", "Haugen", "Hagen", "Johannessen",
    "Andreassen", "Jacobsen", "Dahl", "Jørgensen", "Halvorsen", "Henriksen", "Lund", "Sørensen",
    "Jakobsen", "Moen", "Gundersen", "Iversen", "Strand", "Solberg", "Svendsen", "Eide", "Knutsen",
    "Martinsen", "Paulsen", "Bakken", "Kristoffersen", "Mathisen", "Lie", "Amundsen", "Nguyen",
    "Rasmussen", "Ali", "Lunde", "Solheim", "Berge", "Moe", "Nygård", "Bakke", "Kristensen",
    "Fredriksen", "Holm", "Lien", "Hauge", "Christensen", "Andresen", "Nielsen", "Knudsen", "Evensen",
    "Sæther", "Aas", "Myhre", "Hanssen", "Ahmed", "Haugland", "Thomassen", "Sivertsen", "Simonsen",
];

/// First parts of synthetic street names.
pub const STREET_STEM: &[&str] = &[
    "Kirke", "Skole", "Stasjons", "Stor", "Bjørke", "Gran", "Furu", "Eike", "Løvås", "Solbakke",
    "Fjord", "Strand", "Sjø", "Elve", "Mølle", "Bakke", "Haug", "Skog", "Berg", "Eng", "Myr",
    "Lien", "Nygårds", "Prestegårds", "Fossen", "Heia", "Åsen", "Vika", "Nesset", "Tunet",
];

/// Endings of synthetic street names.
pub const STREET_END: &[&str] = &["veien", "gata", "vegen", "stien", "lia", "bakken", "svingen", "tunet"];

/// Countries for emigration, immigration and foreign citizenship (ISO alpha-3).
pub const COUNTRIES: &[&str] = &["SWE", "DNK", "POL", "LTU", "DEU", "GBR", "USA", "ESP", "SYR", "ERI", "UKR", "PHL"];
