#pragma once
// Early returns on an error status, as abseil's own status macros (newer than Debian 12's
// abseil) and gRPC's write them:
//
//   absl::StatusOr<Project> Load(DbConnection& conn, const std::string& id) {
//     QAI_RETURN_IF_ERROR(CheckId(id));                      // returns the error, if any
//     QAI_ASSIGN_OR_RETURN(Row row, ReadRow(conn, id));      // row is a Row, not a StatusOr
//     return ToProject(row);
//   }
//
// Both evaluate their expression once. QAI_ASSIGN_OR_RETURN declares (or assigns) its left
// side in the enclosing scope; it is a statement, not an expression.

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// QAI_RETURN_IF_ERROR(expr): returns expr's status from the enclosing function when it is not OK.
// expr is an absl::Status, or anything with a status() (absl::StatusOr).
#define QAI_RETURN_IF_ERROR(expr)                                                                  \
  do {                                                                                             \
    if (::absl::Status qai_status_ = ::qai::common::internal::StatusOf(expr); !qai_status_.ok()) { \
      return qai_status_;                                                                          \
    }                                                                                              \
  } while (false)

// QAI_ASSIGN_OR_RETURN(lhs, expr): evaluates expr (an absl::StatusOr<T>); returns its status
// when it is not OK, else moves its value into lhs ("T name" declares it, "name" assigns it).
#define QAI_ASSIGN_OR_RETURN(lhs, expr) \
  QAI_ASSIGN_OR_RETURN_IMPL_(QAI_STATUS_MACROS_CONCAT_(qai_statusor_, __LINE__), lhs, expr)

#define QAI_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)    \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = *std::move(statusor)

#define QAI_STATUS_MACROS_CONCAT_(a, b) QAI_STATUS_MACROS_CONCAT_INNER_(a, b)
#define QAI_STATUS_MACROS_CONCAT_INNER_(a, b) a##b

namespace qai::common::internal {

inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace qai::common::internal
