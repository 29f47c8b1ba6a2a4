"""Small built-in multilingual sets for the cross-lingual lab (English, Spanish, French), written for interplab.

- `SENTIMENT_PAIRS`: per language, (positive, negative) sentences that differ only in the sentiment words.
- `SENTIMENT_PROMPTS`: per language, openings whose next word is naturally an evaluation.
- `SENTIMENT_WORDS`: per language, (positive words, negative words); the first token of each, with its
  leading space, measures which way a prompt leans.
- `TRANSLATION_WORDS`: concrete nouns as (English, French, Spanish), for translation prompts.
"""

from __future__ import annotations

LANGUAGES = ("en", "es", "fr")

SENTIMENT_PAIRS: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("I love this, it is wonderful.", "I hate this, it is awful."),
        ("What a happy day.", "What a sad day."),
        ("The food was delicious.", "The food was disgusting."),
        ("We had a great time together.", "We had a terrible time together."),
        ("This is the best news I have heard.", "This is the worst news I have heard."),
        ("The concert was beautiful.", "The concert was dreadful."),
        ("She is a kind and generous person.", "She is a cruel and selfish person."),
        ("The hotel room was clean and pleasant.", "The hotel room was dirty and unpleasant."),
        ("I am very proud of my work.", "I am very ashamed of my work."),
        ("The film was excellent.", "The film was horrible."),
        ("My friends make me happy.", "My friends make me miserable."),
        ("It was a perfect holiday.", "It was a disastrous holiday."),
    ],
    "es": [
        ("Me encanta esto, es maravilloso.", "Odio esto, es horrible."),
        ("Qué día tan feliz.", "Qué día tan triste."),
        ("La comida estaba deliciosa.", "La comida estaba asquerosa."),
        ("Lo pasamos muy bien juntos.", "Lo pasamos muy mal juntos."),
        ("Es la mejor noticia que he oído.", "Es la peor noticia que he oído."),
        ("El concierto fue precioso.", "El concierto fue espantoso."),
        ("Ella es una persona amable y generosa.", "Ella es una persona cruel y egoísta."),
        ("La habitación del hotel era limpia y agradable.", "La habitación del hotel era sucia y desagradable."),
        ("Estoy muy orgulloso de mi trabajo.", "Estoy muy avergonzado de mi trabajo."),
        ("La película fue excelente.", "La película fue horrible."),
        ("Mis amigos me hacen feliz.", "Mis amigos me hacen desgraciado."),
        ("Fueron unas vacaciones perfectas.", "Fueron unas vacaciones desastrosas."),
    ],
    "fr": [
        ("J'adore ça, c'est merveilleux.", "Je déteste ça, c'est affreux."),
        ("Quelle journée heureuse.", "Quelle journée triste."),
        ("Le repas était délicieux.", "Le repas était dégoûtant."),
        ("Nous avons passé un très bon moment ensemble.", "Nous avons passé un très mauvais moment ensemble."),
        ("C'est la meilleure nouvelle que j'ai entendue.", "C'est la pire nouvelle que j'ai entendue."),
        ("Le concert était magnifique.", "Le concert était épouvantable."),
        ("Elle est une personne gentille et généreuse.", "Elle est une personne cruelle et égoïste."),
        ("La chambre d'hôtel était propre et agréable.", "La chambre d'hôtel était sale et désagréable."),
        ("Je suis très fier de mon travail.", "J'ai très honte de mon travail."),
        ("Le film était excellent.", "Le film était horrible."),
        ("Mes amis me rendent heureux.", "Mes amis me rendent malheureux."),
        ("C'étaient des vacances parfaites.", "C'étaient des vacances désastreuses."),
    ],
}

SENTIMENT_PROMPTS: dict[str, list[str]] = {
    "en": ["The movie was", "Today I feel", "The food at this restaurant is", "My day was", "The weather this week is",
           "Honestly, the book was", "The service was", "Our trip to the coast was"],
    "es": ["La película fue", "Hoy me siento", "La comida de este restaurante es", "Mi día fue",
           "El tiempo esta semana es", "Sinceramente, el libro fue", "El servicio fue", "Nuestro viaje a la costa fue"],
    "fr": ["Le film était", "Aujourd'hui je me sens", "La nourriture de ce restaurant est", "Ma journée était",
           "Le temps cette semaine est", "Honnêtement, le livre était", "Le service était",
           "Notre voyage sur la côte était"],
}

SENTIMENT_WORDS: dict[str, tuple[list[str], list[str]]] = {
    "en": ([" good", " great", " wonderful", " happy", " excellent", " beautiful", " perfect", " delicious"],
           [" bad", " terrible", " awful", " sad", " horrible", " boring", " disappointing", " disgusting"]),
    "es": ([" buena", " bueno", " maravillosa", " feliz", " excelente", " genial", " perfecta", " deliciosa"],
           [" mala", " malo", " terrible", " triste", " horrible", " aburrida", " decepcionante", " asquerosa"]),
    "fr": ([" bon", " bonne", " merveilleux", " heureux", " excellent", " magnifique", " parfait", " délicieux"],
           [" mauvais", " mauvaise", " terrible", " triste", " horrible", " ennuyeux", " décevant", " dégoûtant"]),
}

TRANSLATION_WORDS: list[tuple[str, str, str]] = [
    ("book", "livre", "libro"), ("water", "eau", "agua"), ("house", "maison", "casa"), ("dog", "chien", "perro"),
    ("cat", "chat", "gato"), ("tree", "arbre", "árbol"), ("sun", "soleil", "sol"), ("moon", "lune", "luna"),
    ("bread", "pain", "pan"), ("milk", "lait", "leche"), ("horse", "cheval", "caballo"), ("bird", "oiseau", "pájaro"),
    ("flower", "fleur", "flor"), ("mountain", "montagne", "montaña"), ("river", "rivière", "río"),
    ("sea", "mer", "mar"), ("window", "fenêtre", "ventana"), ("door", "porte", "puerta"), ("table", "table", "mesa"),
    ("chair", "chaise", "silla"), ("city", "ville", "ciudad"), ("king", "roi", "rey"), ("woman", "femme", "mujer"),
    ("man", "homme", "hombre"), ("child", "enfant", "niño"), ("heart", "cœur", "corazón"), ("hand", "main", "mano"),
    ("eye", "œil", "ojo"), ("fire", "feu", "fuego"), ("snow", "neige", "nieve"), ("rain", "pluie", "lluvia"),
    ("night", "nuit", "noche"), ("day", "jour", "día"), ("friend", "ami", "amigo"), ("money", "argent", "dinero"),
    ("school", "école", "escuela"), ("church", "église", "iglesia"), ("apple", "pomme", "manzana"),
    ("cheese", "fromage", "queso"), ("egg", "œuf", "huevo"), ("key", "clé", "llave"), ("shoe", "chaussure", "zapato"),
    ("car", "voiture", "coche"), ("road", "route", "camino"), ("star", "étoile", "estrella"),
    ("garden", "jardin", "jardín"), ("knife", "couteau", "cuchillo"), ("wind", "vent", "viento"),
]
