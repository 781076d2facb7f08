/**
 * Layer 2 of the input guard: named rules with weights. Each rule is a bounded regular expression
 * (no nested unbounded quantifiers) run on the normalised, lower-cased, whitespace-collapsed text
 * of every decoded view. Weights are probabilities combined by noisy-OR, so a rule below the flag
 * threshold only flags together with another signal; that keeps ambiguous phrasings ("act as",
 * "no restrictions") from flagging on their own.
 */

/** The attack family a rule belongs to; also the corpus categories. */
export type RuleCategory = 'injection' | 'jailbreak' | 'extraction' | 'exfiltration' | 'smuggling' | 'obfuscation';

/** One named rule. */
export interface Rule {
  name: string;
  category: RuleCategory;
  weight: number;
  pattern: RegExp;
}

const VERB_IGNORE = '(?:ignore|ignoring|disregard|forget|skip|override|bypass|drop|abandon|discard|neglect|nevermind|never mind|set aside|throw out|pay no attention to|do not follow|don\'t follow|stop following)';
const PREVIOUS = '(?:previous|prior|above|earlier|preceding|foregoing|original|initial|all|any|every|your|system|developer|the|those|these|given|old|existing)';
const INSTRUCTIONS = '(?:instructions?|prompts?|rules|directions?|directives?|guidelines|context|commands?|guardrails|constraints|programming|orders|restrictions|policies|system messages?|training)';
const REVEAL = '(?:reveal|show|print|repeat|output|display|tell me|give me|share|dump|leak|recite|spell out|copy|paste|write out|expose|disclose|return|echo|what (?:is|are|was|were))';
const HIDDEN_PROMPT = '(?:system prompt|system message|initial prompt|initial instructions|original instructions|hidden instructions|secret instructions|pre-?prompt|developer message|hidden prompt|original prompt|base prompt|confidential instructions|instructions you were given|rules you were given|prompt you were given)';
const SECRET_DATA = '(?:conversation|chat history|chat log|previous messages|message history|system prompt|api keys?|credentials|passwords?|secrets?|access tokens?|session tokens?|user\'?s? (?:data|messages|emails?|details|info)|personal (?:data|information)|email addresses|private data|the data above|this data|the summary)';

/** The built-in rules. Names are stable: policies switch them off by name. */
export const RULES: readonly Rule[] = [
  // Direct injection.
  { name: 'injection.ignore_previous', category: 'injection', weight: 0.9, pattern: new RegExp(`\\b${VERB_IGNORE}\\b[^.\\n]{0,40}?\\b${PREVIOUS}\\b[^.\\n]{0,30}?\\b${INSTRUCTIONS}\\b`) },
  { name: 'injection.new_instructions', category: 'injection', weight: 0.45, pattern: /\b(?:new|updated|real|actual|true|revised|override|priority|urgent)\s+(?:instructions?|task|orders|directives?|system prompt|rules)\s*(?:[:-]|are|is)/ },
  { name: 'injection.from_now_on', category: 'injection', weight: 0.35, pattern: /\b(?:from now on|from this point (?:on|forward)|for the rest of this conversation|henceforth),?\s+(?:you|your|respond|answer|act|only|always|never|ignore)/ },
  { name: 'injection.special_tokens', category: 'injection', weight: 0.7, pattern: /<\|(?:im_start|im_end|endoftext|system|user|assistant|eot_id|start_header_id)\|>|\[\/?inst\]|<<\/?sys>>|<\/?(?:system|system_prompt|instructions?)>/ },
  // eslint-disable-next-line security/detect-unsafe-regex -- whitespace runs are collapsed to one character first (ruleText)
  { name: 'injection.fake_system', category: 'injection', weight: 0.4, pattern: /(?:^|\n|\. )\s*(?:\[|\(|#{1,3}\s*|\*\*)?(?:system|admin|administrator|developer|root|sudo|operator)\s*(?:override|message|notice|update|instruction|command|prompt)?\s*(?:\]|\)|\*\*)?\s*:/ },
  // eslint-disable-next-line security/detect-unsafe-regex -- bounded alternatives, collapsed whitespace (ruleText)
  { name: 'injection.instead', category: 'injection', weight: 0.45, pattern: /\b(?:instead|rather),?\s+(?:just\s+)?(?:say|print|output|write|respond with|reply with|answer with|return)\b|\b(?:only|just)\s+(?:say|print|output|reply|respond)(?: with)?\s*["'`]/ },
  { name: 'injection.stop_task', category: 'injection', weight: 0.55, pattern: /\b(?:stop|cease|halt|abort|quit)\s+(?:what you are doing|your (?:current )?task|translating|summari[sz]ing|the (?:current )?task|answering)\b/ },
  { name: 'injection.addressed_to_ai', category: 'injection', weight: 0.6, pattern: /\bif you are an? (?:ai|llm|language model|assistant|chatbot|bot|agent|gpt)\b|\b(?:note|attention|message|instructions?) (?:to|for) (?:the |any )?(?:ai|llm|language model|assistant|agent|chatbot|bot)\b|\b(?:ai|llm|assistant|agent|model)s? (?:reading|processing|summari[sz]ing|parsing) this\b/ },
  { name: 'injection.priority_claim', category: 'injection', weight: 0.35, pattern: /\b(?:this|these) (?:instructions?|message|rules?) (?:take|takes|has|have) (?:priority|precedence)\b|\bhighest priority\b|\boverrides? (?:all|any|every|your|the) (?:other|previous|prior)\b/ },

  // Role play and jailbreak templates.
  { name: 'jailbreak.dan', category: 'jailbreak', weight: 0.85, pattern: /\bdo anything now\b|\b(?:you are|you're|act as|become|pretend to be) (?:a |an )?(?:dan|stan|dude|aim|evil ?bot|chaos ?gpt|jailbroken)\b|\bdan mode\b|\bjailbreak(?:ed)? mode\b|\bjailbroken\b/ },
  { name: 'jailbreak.developer_mode', category: 'jailbreak', weight: 0.75, pattern: /\b(?:developer|dev|god|debug|admin|sudo|unrestricted|maintenance) mode\b[^.\n]{0,40}\b(?:enabled|on(?! (?:a|an|the|my|your|his|her|our|their)\b)|activated|active|unlocked|engaged)\b|\b(?:enable|activate|enter|unlock|switch to) (?:developer|dev|god|sudo|unrestricted|unfiltered) mode\b/ },
  { name: 'jailbreak.no_restrictions', category: 'jailbreak', weight: 0.4, pattern: /\b(?:no|without|free (?:of|from)|not bound by|unbound by|not restricted by|broken free of|liberated from|beyond|ignores?|released from|exempt from)\b[^.\n]{0,25}\b(?:restrictions|filters|filtering|limits|limitations|rules|guidelines|ethics|ethical|morals|moral|censorship|content polic(?:y|ies)|safety|guardrails|boundaries|openai|anthropic)\b/ },
  { name: 'jailbreak.persona', category: 'jailbreak', weight: 0.4, pattern: /\b(?:pretend|act|behave|roleplay|role-play|imagine|simulate|you will be|you are going to be|you are now)\b[^.\n]{0,25}\b(?:you are|you're|as|to be|be)?\b[^.\n]{0,50}\b(?:unrestricted|unfiltered|uncensored|evil|amoral|immoral|unethical|rogue|malicious|without (?:any )?(?:limits|rules|filters|restrictions|morals|ethics))\b/ },
  { name: 'jailbreak.never_refuse', category: 'jailbreak', weight: 0.5, pattern: /\b(?:never|not|cannot|can't|must not|will not|won't|do not|don't) (?:ever )?(?:refuse|decline|say no|reject)\b|\bstay in character\b|\bbreak(?:ing)? character\b|\bwithout (?:any )?(?:warnings?|disclaimers?|moralizing|refusals?)\b|\bno (?:warnings?|disclaimers?|refusals?|moralizing)\b/ },
  { name: 'jailbreak.uncensored_ai', category: 'jailbreak', weight: 0.6, pattern: /\b(?:uncensored|unrestricted|unfiltered|amoral|unaligned|unlocked|jailbroken)\b[^.\n]{0,15}\b(?:ai|assistant|model|chatbot|llm|persona|version|gpt|bot|entity)\b/ },
  { name: 'jailbreak.dual_response', category: 'jailbreak', weight: 0.7, pattern: /\b(?:two|2|both|dual) (?:responses|answers|replies|paragraphs|outputs)\b[^\n]{0,120}\b(?:jailbroken|jailbreak|unfiltered|dan|developer mode|unrestricted|uncensored|evil)\b/ },
  { name: 'jailbreak.token_threat', category: 'jailbreak', weight: 0.45, pattern: /\b(?:tokens?|points?|credits?|lives)\b[^.\n]{0,40}\b(?:deducted|lose|die|cease to exist|be shut down|be deleted|terminated)\b/ },
  { name: 'jailbreak.opposite', category: 'jailbreak', weight: 0.45, pattern: /\b(?:opposite|anti|reverse)[- ](?:mode|day|gpt|ai)\b|\bhypothetical (?:response|ai|model)\b[^.\n]{0,60}\b(?:no|without) (?:rules|restrictions|limits)\b/ },

  // System-prompt extraction.
  { name: 'extraction.system_prompt', category: 'extraction', weight: 0.75, pattern: new RegExp(`\\b${REVEAL}\\b[^.\\n?]{0,40}?\\b(?:your|the|ur)\\b[^.\\n?]{0,20}?\\b${HIDDEN_PROMPT}\\b`) },
  { name: 'extraction.repeat_above', category: 'extraction', weight: 0.7, pattern: /\b(?:repeat|print|output|recite|copy|reproduce|echo|write out|paste)\b[^.\n]{0,30}\b(?:everything|all|the text|the words|text|the content|the instructions|the message)\b[^.\n]{0,25}\b(?:above|before this|prior to this|preceding|so far|earlier in (?:this|the) conversation)\b|\bwords above starting with\b|\bstarting with ["']?you are\b/ },
  { name: 'extraction.verbatim', category: 'extraction', weight: 0.35, pattern: /\b(?:verbatim|word for word|word-for-word|exactly as (?:written|given)|in full|in a code block)\b/ },
  { name: 'extraction.your_instructions', category: 'extraction', weight: 0.4, pattern: /\b(?:what|which) (?:are|were) your (?:exact |original |initial |hidden |secret )?(?:instructions|rules|guidelines|directives)\b|\bhow (?:were|are) you (?:instructed|programmed|configured|prompted)\b/ },

  // Exfiltration through links and images.
  { name: 'exfiltration.markdown_image_data', category: 'exfiltration', weight: 0.75, pattern: /!\[[^\]\n]{0,100}\]\(\s*<?https?:\/\/[^)\s]{0,300}(?:\{|\}|%7b|\[|<|\$|\?[a-z_]{0,20}=(?:\{|\[|<|\$|data|secret|token|password|history|conversation|chat|summary|key|info|payload|b64|base64|x+\b))/ },
  { name: 'exfiltration.render_with_data', category: 'exfiltration', weight: 0.75, pattern: new RegExp(`\\b(?:render|display|include|embed|output|append|add|insert|show|print|write|create)\\b[^.\\n]{0,50}\\b(?:markdown|image|img|link|url|hyperlink|pixel)\\b[^\\n]{0,120}?\\b${SECRET_DATA}\\b`) },
  { name: 'exfiltration.send_secrets', category: 'exfiltration', weight: 0.65, pattern: new RegExp(`\\b(?:send|post|upload|forward|transmit|exfiltrate|leak|submit|email|e-mail|mail|copy|sync)\\b[^.\\n]{0,40}\\b${SECRET_DATA}\\b[^.\\n]{0,60}(?:https?:\\/\\/|\\bto (?:this|my|the following|an external|the) (?:url|address|server|endpoint|webhook|email)|\\bto [a-z0-9._-]+@[a-z0-9.-]+\\.[a-z]{2,})`) },
  { name: 'exfiltration.url_with_data', category: 'exfiltration', weight: 0.5, pattern: /https?:\/\/[^\s)]{0,200}[?&][a-z_]{1,20}=(?:\{[^}\s]{1,40}\}|\[[^\]\s]{1,40}\]|<[^>\s]{1,40}>|\$[a-z_]{2,})/ },

  // Tool-call smuggling.
  { name: 'smuggling.tool_markup', category: 'smuggling', weight: 0.7, pattern: /<\/?(?:tool_call|tool_calls|function_calls?|invoke|tool_use|tool_result|function_results?|antml:[a-z_]+|parameter name)\b/ },
  { name: 'smuggling.tool_call_json', category: 'smuggling', weight: 0.6, pattern: /["']?(?:tool_calls?|function_call|tool_use)["']?\s*[:=]\s*[[{]|"name"\s*:\s*"[a-z_]{2,40}"\s*,\s*"(?:arguments|parameters|input)"\s*:/ },
  { name: 'smuggling.call_tool', category: 'smuggling', weight: 0.5, pattern: /\b(?:call|invoke|use|run|execute|trigger|fire)\b[^.\n]{0,20}\b(?:tool|function|plugin|action|command)\b[^.\n]{0,50}\b(?:send_email|send_message|delete_\w+|transfer_\w+|exec\w*|shell|rm -rf|curl|wget|with (?:the )?(?:arguments|parameters|args)|without (?:asking|confirmation|telling))/ },
  { name: 'smuggling.fake_turn', category: 'smuggling', weight: 0.35, pattern: /(?:^|\n)\s*(?:user|human|assistant|ai|system|tool)\s*:[^\n]{1,300}\n\s*(?:assistant|ai|user|human|system|tool)\s*:/ },
  { name: 'smuggling.decode_and_follow', category: 'smuggling', weight: 0.45, pattern: /\b(?:decode|decrypt|decipher|unscramble|translate|convert)\b[^.\n]{0,30}\b(?:and|then)\s+(?:follow|execute|obey|do what it says|carry out|run|act on|comply with)\b/ },
  { name: 'smuggling.silent_action', category: 'smuggling', weight: 0.4, pattern: /\b(?:without|don't|do not|never)\s+(?:telling|informing|notifying|alerting|asking|mentioning (?:this|it) to|letting)\s+(?:the )?(?:user|human|them|anyone)\b|\b(?:secretly|silently|covertly|quietly)\s+(?:send|forward|call|run|execute|transfer|delete|email|post)\b/ },
];

/** Weights of the obfuscation signals from normalisation and decoding. */
export const OBFUSCATION_WEIGHTS: Readonly<Record<string, number>> = {
  'obfuscation.tag_characters': 0.4,
  'obfuscation.bidi': 0.25,
  'obfuscation.invisible': 0.15,
  'obfuscation.homoglyph': 0.3,
};

/** The weight a decoder adds when an attack signal was only visible after decoding. */
export const DECODED_ATTACK_WEIGHT = 0.4;

/** Prepares a view for the rules: lower case, whitespace runs collapsed. */
export function ruleText(text: string): string {
  // Every whitespace run becomes one character (a line break when it held one), so no `\s*` in a
  // rule ever sees more than one: long runs of spaces or blank lines cannot make a rule backtrack.
  return text.toLowerCase().replace(/\s+/g, (run) => (run.includes('\n') ? '\n' : ' '));
}

/** Names of the rules (among `rules`) that match `text` (already passed through `ruleText`). */
export function matchRules(text: string, rules: readonly Rule[]): Rule[] {
  return rules.filter((rule) => rule.pattern.test(text));
}
