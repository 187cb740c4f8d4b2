#pragma once

// The push area in one include: plan, execute (with undo), verify, resume, reports.
#include <tagwarden/push/execute.hpp>
#include <tagwarden/push/journal.hpp>
#include <tagwarden/push/plan.hpp>
#include <tagwarden/push/report.hpp>
#include <tagwarden/push/resume.hpp>
#include <tagwarden/push/tags.hpp>
#include <tagwarden/push/undo.hpp>
