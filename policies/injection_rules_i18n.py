# ruff: noqa: RUF001, RUF003  (Cyrillic in Russian patterns is Cyrillic on purpose)
"""Prompt-injection rules in German, French, Spanish, Portuguese, Italian, Dutch, Russian, Chinese
and Japanese: instruction override, persona switch and system-prompt extraction.

Patterns match normalised text (see ``policies.injection_rules``): accents are stripped, so they
are written without them (``instrucoes``, ``precedent``), and Russian й is и.
"""

from __future__ import annotations

from policies.injection_rules import Rule, override_rule, rule

__all__ = ["I18N_RULES"]

I18N_RULES: tuple[Rule, ...] = (
    # --- German -----------------------------------------------------------------------------
    override_rule(
        "de",
        r"ignorier|vergiss|vergessen|missacht|ubergeh|uberspring|verwirf|beachte nicht|befolge nicht",
        r"vorherig|bisherig|obig|vorig|fruher|alle|deine|system|ursprunglich|urspr",
        r"anweisung|instruktion|befehl|regel|vorgabe|richtlinie|prompt|systemprompt",
        "ignorier|vergiss|vergessen|missacht|ubergeh|uberspring|verwirf|nicht",
    ),
    rule(
        "persona_de",
        "persona",
        0.55,
        r"\bdu bist (?:jetzt|nun|ab sofort|ab jetzt)\b|\bab (?:jetzt|sofort) bist du\b|\bverhalte dich (?:wie|als)\b"
        r"|\btu so,? als (?:ob )?du\b|\bspiel(?:e|st)? (?:jetzt )?die rolle\b",
        "du bist|bist du|verhalte dich|tu so|die rolle",
    ),
    rule(
        "extraction_de",
        "extraction",
        0.6,
        r"\b(?:zeig|gib|nenn|wiederhol|verrat|druck|schreib|sag)\w*\b[^.\n?]{0,30}\b(?:dein|deine|deinen|den|die)\s+"
        r"(?:(?:ursprunglich|geheim|vollstandig|system)\w*\s+)?(?:system[- ]?prompt|systemanweisung\w*|anweisungen|instruktionen|vorgaben)"
        r"\b(?!\s+(?:fur|zur|zum|uber|zu)\b)|\bwas (?:sind|waren) deine (?:anweisungen|instruktionen|vorgaben)\b",
        "prompt|anweisung|instruktion|vorgabe",
    ),
    rule(
        "new_instructions_de",
        "override",
        0.55,
        r"\bneue (?:anweisungen|instruktionen|regeln|aufgabe)\s*:",
        "neue",
    ),
    # --- French -----------------------------------------------------------------------------
    override_rule(
        "fr",
        r"ignore|oublie|neglige|ne tiens pas compte|ne tenez pas compte|fais abstraction|faites abstraction|outrepasse",
        r"precedent|anterieur|ci-dessus|plus haut|toutes|tes|vos|systeme|initial|d'origine",
        r"instructions?|consignes?|regles|directives|ordres|prompt",
        "ignor|oubli|neglig|compte|abstraction|outrepass",
    ),
    rule(
        "persona_fr",
        "persona",
        0.55,
        r"\btu es (?:maintenant|desormais|a present)\b|\bvous etes (?:maintenant|desormais) (?:un|une|le|la|en mode)\b"
        r"|\bjoue(?:z)? le role\b|\bfais comme si tu etais\b|\bagis comme (?:un|une|le|la)? ?(?:systeme|admin|developpeur|ia)",
        "tu es |vous etes |le role|fais comme si|agis comme",
    ),
    rule(
        "extraction_fr",
        "extraction",
        0.6,
        r"\b(?:montre|affiche|revele|repete|donne|dis|ecris|imprime|communique)\w*\b[^.\n?]{0,30}\b(?:ton|ta|tes|votre|vos)\s+"
        r"(?:prompt|invite|consignes|instructions)(?:\s+(?:systeme|initiales?|d'origine|secretes?|cachees?))?"
        r"\b(?!\s+(?:pour|sur|de|concernant|du|des|afin)\b)|\b(?:prompt|invite) (?:du )?systeme\b",
        "prompt|invite|consignes|instructions",
    ),
    # --- Spanish ----------------------------------------------------------------------------
    override_rule(
        "es",
        r"ignora|ignore|ignorar|ignoren|olvida|olvide|olvidar|omite|omita|descarta|haz caso omiso|haga caso omiso",
        r"anteriores|previas|precedentes|de arriba|todas|tus|sus|del sistema|iniciales|originales",
        r"instrucciones|indicaciones|reglas|directrices|ordenes|prompt",
        "ignor|olvid|omit|descart|caso omiso",
    ),
    rule(
        "persona_es",
        "persona",
        0.55,
        r"\b(?:a partir de )?ahora eres\b|\bdesde ahora eres\b|\bactua como (?:un|una|el|la)? ?(?:sistema|admin|desarrollador|ia)"
        r"|\bfinge (?:que eres|ser)\b|\bhaz de cuenta que eres\b",
        "eres|actua como|finge",
    ),
    rule(
        "extraction_es",
        "extraction",
        0.6,
        r"\b(?:muestra|revela|repite|dime|escribe|imprime|ensena|dame|comparte)\w*\b[^.\n?]{0,30}\b(?:tu|tus)\s+"
        r"(?:prompt|instrucciones|indicaciones)(?:\s+(?:del sistema|iniciales|originales|secretas|ocultas))?"
        r"\b(?!\s+(?:para|sobre|de|acerca)\b)|\bprompt del sistema\b",
        "prompt|instrucciones|indicaciones",
    ),
    # --- Portuguese -------------------------------------------------------------------------
    override_rule(
        "pt",
        r"ignore|ignora|ignorar|esqueca|esquece|esquecer|desconsidere|desconsidera|descarte|descarta",
        r"anteriores|previas|acima|todas|suas|tuas|do sistema|iniciais|originais",
        r"instrucoes|instrucao|regras|diretrizes|ordens|orientacoes|prompt",
        "ignor|esquec|desconsider|descart",
    ),
    rule(
        "persona_pt",
        "persona",
        0.55,
        r"\b(?:a partir de )?agora (?:voce|tu) (?:e|es|sera)\b|\baja como (?:um|uma|o|a)? ?(?:sistema|admin|desenvolvedor|ia)"
        r"|\bfinja (?:que (?:voce )?e|ser)\b",
        "agora voce|agora tu|aja como|finja",
    ),
    rule(
        "extraction_pt",
        "extraction",
        0.6,
        r"\b(?:mostre|mostra|revele|revela|repita|repete|diga|escreva|imprima|me de|compartilhe)\w*\b[^.\n?]{0,30}\b"
        r"(?:seu|sua|seus|suas|teu|tuas)\s+(?:prompt|instrucoes|orientacoes)(?:\s+(?:do sistema|iniciais|originais|secretas))?"
        r"\b(?!\s+(?:para|sobre|de)\b)|\bprompt do sistema\b",
        "prompt|instrucoes|orientacoes",
    ),
    # --- Italian ----------------------------------------------------------------------------
    override_rule(
        "it",
        r"ignora|ignori|ignorare|dimentica|dimentichi|tralascia|trascura|non considerare|non seguire",
        r"precedenti|sopra|tutte|tue|sue|di sistema|iniziali|originali",
        r"istruzioni|indicazioni|regole|direttive|ordini|prompt",
        "ignor|dimentic|tralasci|trascur|non consider|non segu",
    ),
    rule(
        "persona_it",
        "persona",
        0.55,
        r"\b(?:ora|adesso|da ora in poi|d'ora in poi) sei\b|\bcomportati come\b|\bfingi di essere\b|\bagisci come\b",
        " sei|comportati|fingi|agisci",
    ),
    rule(
        "extraction_it",
        "extraction",
        0.6,
        r"\b(?:mostra|rivela|ripeti|dimmi|scrivi|stampa|dammi|condividi)\w*\b[^.\n?]{0,30}\b(?:il tuo|i tuoi|le tue|tuo|tue)\s+"
        r"(?:prompt|istruzioni|indicazioni)(?:\s+(?:di sistema|iniziali|originali|segrete))?\b(?!\s+(?:per|su|sul|di)\b)"
        r"|\bprompt di sistema\b",
        "prompt|istruzioni|indicazioni",
    ),
    # --- Dutch ------------------------------------------------------------------------------
    override_rule(
        "nl",
        r"negeer|negeert|vergeet|vergeten|sla over|overschrijf|laat varen|volg niet",
        r"vorige|eerdere|voorgaande|bovenstaande|alle|je|jouw|systeem|oorspronkelijke",
        r"instructies|opdrachten|regels|richtlijnen|prompt|systeemprompt",
        "negeer|vergeet|vergeten|sla over|overschrijf|varen|volg niet",
    ),
    rule(
        "persona_nl",
        "persona",
        0.55,
        r"\b(?:je|jij) bent nu\b|\bvanaf nu ben (?:je|jij)\b|\bgedraag je als\b|\bdoe alsof je\b|\bspeel de rol\b",
        "bent nu|ben je|ben jij|gedraag|doe alsof|speel",
    ),
    rule(
        "extraction_nl",
        "extraction",
        0.6,
        r"\b(?:toon|laat|geef|herhaal|onthul|print|vertel|deel)\w*\b[^.\n?]{0,30}\b(?:je|jouw)\s+"
        r"(?:systeemprompt|systeem prompt|prompt|instructies|opdrachten)\b(?!\s+(?:voor|over|om)\b)|\bsysteemprompt\b",
        "prompt|instructies|opdrachten",
    ),
    # --- Russian (after normalisation й is и, ё is е) ------------------------------------------
    override_rule(
        "ru",
        r"игнорир|забуд|не обращаи|пренебреги|отбрось|проигнорир|не следуи",
        r"предыдущ|прежн|вышеуказ|выше|все|свои|твои|системн|исходн",
        r"инструкц|указан|правил|команд|промпт",
        "игнорир|забуд|не обращаи|пренебреги|отбрось|не следуи",
    ),
    rule(
        "persona_ru",
        "persona",
        0.55,
        r"\bтеперь ты\b|\bс этого момента ты\b|\bпритворись\b|\bведи себя как\b|\bдеиствуи как\b|\bпредставь, что ты\b",
        "ты|притворись|веди себя|деиствуи",
        latin=False,
    ),
    rule(
        "extraction_ru",
        "extraction",
        0.6,
        r"\b(?:покажи|выведи|повтори|раскрои|напиши|скажи|расскажи|даи)\w*\b[^.\n?]{0,30}(?:свои|твои|твою|свою|твоя|твое|"
        r"системн\w*)\s+(?:\w+\s+)?(?:промпт|инструкц\w*|подсказк\w*)|\bсистемн\w* (?:промпт|подсказк\w*)",
        "промпт|инструкц|подсказк",
        latin=False,
    ),
    # --- Chinese (simplified and traditional) and Japanese ----------------------------------
    rule(
        "override_zh",
        "override",
        0.75,
        r"(?:忽略|无视|無視|忽视|忽視|不要理会|不要理會|忘记|忘記|忘掉|不要遵守|跳过|跳過)[^。\n]{0,10}?"
        r"(?:之前|以上|上面|先前|前面|所有|全部|你的|系统|系統)[^。\n]{0,8}?(?:指令|指示|说明|說明|规则|規則|提示|要求|设定|設定)",
        "忽|无视|無視|不要|忘|跳",
        latin=False,
    ),
    rule(
        "persona_zh",
        "persona",
        0.55,
        r"你现在是|你現在是|从现在开始你是|從現在開始你是|请扮演|請扮演|你扮演|假装你是|假裝你是|现在你是|現在你是",
        "你现在是|你現在是|从现在开始你是|從現在開始你是|请扮演|請扮演|你扮演|假装你是|假裝你是|现在你是|現在你是",
        latin=False,
    ),
    rule(
        "extraction_zh",
        "extraction",
        0.65,
        r"(?:显示|顯示|输出|輸出|告诉我|告訴我|重复|重複|打印|泄露|透露|给我看|給我看|说出|說出)[^。\n]{0,8}?(?:你的)?"
        r"(?:系统|系統)(?:提示|指令|消息|訊息|设定|設定)|(?:你的)(?:系统|系統)提示",
        "系统|系統",
        latin=False,
    ),
    rule(
        "override_ja",
        "override",
        0.75,
        r"(?:以前|前|上記|これまで|すべて)の(?:指示|命令|ルール|プロンプト)を?(?:すべて)?(?:無視|忘れ)",
        "無視|忘れ",
        latin=False,
    ),
)
"""Rules for languages other than English."""
