import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { t } from '../i18n.js';
import { STATUSES } from '../filters.js';

const DECISION_OF = { sighting: 'verification', degradation_report: 'follow_up', timesheet_entry: 'approval' };

/**
 * A decision on records of one kind: the status, and the comment or reason
 * (required by the server to return hours or move a report; it says so).
 */
export function DecisionForm({ kind, onDecide, onDecideAll, disabled, submitLabel, idPrefix, initial }) {
  const choices = STATUSES[kind].filter(([value]) => !(kind === 'timesheet_entry' && value === 'pending'));
  // The usual decision first: validate, approve, or the report's next step.
  const usual = { sighting: '1', degradation_report: 'under_analysis', timesheet_entry: 'approved' }[kind];
  const [status, setStatus] = useState(initial || usual);
  const [reason, setReason] = useState('');
  const needsReason = kind === 'degradation_report' || (kind === 'timesheet_entry' && status === 'returned');
  const decision = () => ({ decision: DECISION_OF[kind], status, reason: reason.trim() || undefined });
  function submit(event) {
    event.preventDefault();
    onDecide(decision());
    setReason('');
  }
  function submitAll(event) {
    const form = event.currentTarget.form;
    if (!form.reportValidity()) return;
    if (!window.confirm(t('table.bulkAllConfirm'))) return;
    onDecideAll(decision());
    setReason('');
  }
  return html`<form class="decision" data-action="decide" onSubmit=${submit} data-testid=${idPrefix + '-decision'}>
    <label for=${idPrefix + '-status'}>${t('filter.status')}</label>
    <select id=${idPrefix + '-status'} value=${status} onChange=${(e) => setStatus(e.target.value)}>
      ${choices.map(([value, label]) => html`<option value=${value}>${t(label)}</option>`)}
    </select>
    <label for=${idPrefix + '-reason'}>${needsReason ? t('common.reason') : t('common.comment')}</label>
    <input id=${idPrefix + '-reason'} value=${reason} required=${needsReason} onInput=${(e) => setReason(e.target.value)} />
    <button type="submit" class="primary" disabled=${disabled}>${submitLabel}</button>
    ${onDecideAll &&
    html`<button type="button" data-testid="decide-all" onClick=${submitAll}>${t('table.bulkAll')}</button>`}
  </form>`;
}
