// The record vocabulary, read from the JSON Schema files of the schemas crate
// (schemas/json/, written from schemas/src and checked there) when vite
// builds each app: the values an enumeration takes, the bounds of a field,
// and the French and English label of each enumeration value. A field added
// to a schema, or a bound changed, reaches both apps at their next build
// (server/build.rs rebuilds them when schemas/json changes).
import sighting from '../../../schemas/json/sighting.schema.json';
import degradationReport from '../../../schemas/json/degradation_report.schema.json';
import timesheetEntry from '../../../schemas/json/timesheet_entry.schema.json';

/** Each record kind's JSON Schema, by the kind's name in the API. */
const SCHEMAS = { sighting, degradation_report: degradationReport, timesheet_entry: timesheetEntry };

/** A field's schema, its `$ref` (an enumeration in `$defs`) followed. */
function property(kind, field) {
  const schema = SCHEMAS[kind];
  const found = schema && schema.properties[field];
  if (!found) throw new Error(`schemas/json: ${kind} has no field ${field}`);
  if (!found.$ref) return found;
  return { ...schema.$defs[found.$ref.replace('#/$defs/', '')], ...found };
}

/** The values an enumerated field takes, in the schema's order. */
export function values(kind, field) {
  return property(kind, field).enum;
}

/** The most characters a text field holds (or, for a list, items). */
export function maxLength(kind, field) {
  const p = property(kind, field);
  return p.maxLength ?? p.maxItems;
}

/** The bounds of a number: `{ min, max }` (each undefined when the schema sets none). */
export function bounds(kind, field) {
  const p = property(kind, field);
  return { min: p.minimum ?? p.exclusiveMinimum, max: p.maximum ?? p.exclusiveMaximum };
}

/** What kind of damage a degradation report is about. */
export const CATEGORIES = values('degradation_report', 'category');
/** What volunteer hours were spent on. */
export const ACTIVITIES = values('timesheet_entry', 'activity');

/**
 * The labels of the enumerations both apps show, by i18n key prefix, then
 * language, then the schema's value. Only values the schema has are given to
 * the apps; a value without a label shows as its key (`has()` says so).
 */
const LABELS = {
  category: {
    values: CATEGORIES,
    fr: {
      waste_dumping: 'Dépôt de déchets',
      felled_or_damaged_trees_or_hedges: 'Arbres ou haies abattus ou abîmés',
      water_pollution: 'Pollution de l’eau',
      damaged_wetland: 'Zone humide dégradée',
      pesticide_use: 'Usage de pesticides',
      harm_to_protected_species_or_habitat: 'Atteinte à une espèce ou un habitat protégé',
      invasive_alien_species: 'Espèce exotique envahissante',
      light_pollution: 'Pollution lumineuse',
      other: 'Autre',
    },
    en: {
      waste_dumping: 'Waste dumping',
      felled_or_damaged_trees_or_hedges: 'Felled or damaged trees or hedges',
      water_pollution: 'Water pollution',
      damaged_wetland: 'Damaged wetland',
      pesticide_use: 'Pesticide use',
      harm_to_protected_species_or_habitat: 'Harm to a protected species or habitat',
      invasive_alien_species: 'Invasive alien species',
      light_pollution: 'Light pollution',
      other: 'Other',
    },
  },
  activity: {
    values: ACTIVITIES,
    fr: {
      field_survey: 'Inventaire de terrain',
      planting: 'Plantation',
      clean_up: 'Nettoyage',
      data_entry: 'Saisie de données',
      training: 'Formation',
      meeting: 'Réunion',
      awareness_event: 'Sensibilisation',
      other: 'Autre',
    },
    en: {
      field_survey: 'Field survey',
      planting: 'Planting',
      clean_up: 'Clean-up',
      data_entry: 'Data entry',
      training: 'Training',
      meeting: 'Meeting',
      awareness_event: 'Awareness event',
      other: 'Other',
    },
  },
};

/** The vocabulary's labels in `lang`, as i18n messages (`category.<value>`, `activity.<value>`). */
export function vocabularyMessages(lang) {
  const messages = {};
  for (const [prefix, labels] of Object.entries(LABELS)) {
    for (const value of labels.values) {
      const label = labels[lang] && labels[lang][value];
      if (label) messages[`${prefix}.${value}`] = label;
    }
  }
  return messages;
}
